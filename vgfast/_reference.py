"""Pure-numpy twin of the compiled engine: the readable specification the tests compare against.

Same data layout (examples are rows, one flat parameter vector), same equations, no speed.
Read this file to know what the engine computes.
"""
import numpy as np


def sigmoid(z):
    # stable for any finite z
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(z):
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def softmax(z):
    """Row-wise softmax. Infinite logits take their limit: the +inf entries of a row share the
    mass equally, a row of -inf only is uniform (as the engine does); NaN propagates."""
    z = np.asarray(z)
    mx = z.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(z - np.where(np.isfinite(mx), mx, 0))
    inf_rows = np.isinf(mx[:, 0])
    if inf_rows.any():
        top = (z[inf_rows] == mx[inf_rows]).astype(z.dtype)
        e[inf_rows] = np.where(np.isnan(z[inf_rows]), z[inf_rows], top)
    return e / e.sum(axis=1, keepdims=True)


def activate(z, name, alpha=0.0):
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, alpha * z)
    if name == "linear":
        return z.copy()
    if name == "abs":
        return np.abs(z)
    if name == "elu":
        return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))
    if name == "softplus":
        return softplus(z)
    if name == "softmax":
        return softmax(z)
    raise ValueError(name)


def sigmoid_prime(z):
    """sigma'(z) = e / (1 + e)^2 with e = exp(-|z|): full relative precision for every z.

    Not a * (1 - a): with a = sigma(z) rounded, 1 - a cancels, and sigma' would be 0 for
    z >= 37 in float64 (17 in float32) where it is really e^-z."""
    e = np.exp(-np.abs(z))
    return e / ((1 + e) * (1 + e))


def derivative(z, a, name, alpha=0.0):
    """f'(z), from z or from the stored activation a where that is exact (as the engine does)."""
    if name == "sigmoid":
        return sigmoid_prime(z)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, alpha).astype(z.dtype)
    if name == "linear":
        return np.ones_like(z)
    if name == "abs":
        return np.sign(z)
    if name == "elu":
        return np.where(z > 0, 1.0, a + alpha).astype(z.dtype)
    if name == "softplus":
        return sigmoid(z)
    raise ValueError(name)


def layer_activations(net):
    """(name, alpha) for each weight layer, the output layer last."""
    acts = [(a, net.leaky_slope if a == "leaky_relu" else net.elu_alpha if a == "elu" else 0.0)
            for a in net.activations]
    return acts + [(net.output, 0.0)]


def split(net, flat):
    return net._split(flat)


def targets(Y, n_out, dtype):
    Y = np.asarray(Y)
    if Y.ndim == 1:
        T = np.zeros((Y.shape[0], n_out), dtype)
        T[np.arange(Y.shape[0]), Y] = 1
        return T
    return Y.astype(dtype)


def forward(net, params, X, batch_stats=False, cache=None):
    """zs[l], activations[l+1] for l = 0..L-1; activations[0] = X.

    Batch-normalised layers: z^l is gamma * xhat + beta, the activation's input, with
    xhat = (a W^T + b - mean) / sqrt(var + eps) over the batch (batch_stats) or with the running
    statistics; cache (a dict) receives xhat and 1/std per layer for backprop.
    """
    weights, biases = split(net, params)
    gammas, betas = net._split_bn(params)
    bn = list(net.batch_norm) + [False]
    a, zs, acts = X, [], [X]
    for l, ((name, alpha), w, b) in enumerate(zip(layer_activations(net), weights, biases)):
        z = a @ w.T + b
        if bn[l]:
            if batch_stats:
                mu, var = z.mean(axis=0), z.var(axis=0)
            else:
                mu, var = net.bn_running_mean[l], net.bn_running_var[l]
            invstd = 1.0 / np.sqrt(var + net.bn_eps)
            xhat = (z - mu) * invstd
            z = gammas[l] * xhat + betas[l]
            if cache is not None:
                cache[l] = (xhat, invstd)
        a = activate(z, name, alpha)
        zs.append(z)
        acts.append(a)
    return zs, acts


def cost_per_example(net, z, a, T):
    """The per-example cost, computed from z where that is the stable way."""
    if net.cost_name == "cross_entropy":
        return np.sum(softplus(z) - T * z, axis=1)
    if net.cost_name == "log_likelihood":
        mx = z.max(axis=1, keepdims=True)
        lse = mx + np.log(np.sum(np.exp(z - mx), axis=1, keepdims=True))
        return np.sum(T * (lse - z), axis=1)
    return 0.5 * np.sum((a - T) ** 2, axis=1)


def output_delta(net, z, a, T):
    """dC/dz of the output layer, per example."""
    if net.cost_name == "cross_entropy":
        return a - T
    if net.cost_name == "log_likelihood":
        return T.sum(axis=1, keepdims=True) * a - T
    e = a - T
    if net.output == "softmax":
        return a * (e - np.sum(a * e, axis=1, keepdims=True))
    return e * derivative(z, a, net.output)


def backprop(net, params, X, Y, batch_stats=False):
    """(gradient of the mean cost over the rows as a flat vector, mean cost, per-layer deltas)."""
    T = targets(Y, net.sizes[-1], params.dtype)
    weights, _ = split(net, params)
    gammas, _ = net._split_bn(params)
    cache = {}
    zs, acts = forward(net, params, X, batch_stats, cache)
    m = X.shape[0]
    grad = np.zeros_like(params)
    gw, gb = split(net, grad)
    ggam, gbet = net._split_bn(grad)
    acts_info = layer_activations(net)
    delta = output_delta(net, zs[-1], acts[-1], T)
    deltas = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        if l in cache:
            # through the normalisation (sum-of-costs convention, per-example rows)
            xhat, invstd = cache[l]
            gbet[l][...] = delta.sum(axis=0) / m
            ggam[l][...] = (delta * xhat).sum(axis=0) / m
            if batch_stats:
                delta = gammas[l] * invstd * (delta - delta.mean(axis=0)
                                              - xhat * (delta * xhat).mean(axis=0))
            else:
                delta = gammas[l] * invstd * delta
        deltas[l] = delta
        gw[l][...] = delta.T @ acts[l] / m
        gb[l][...] = delta.sum(axis=0) / m
        if l > 0:
            name, alpha = acts_info[l - 1]
            delta = (delta @ weights[l]) * derivative(zs[l - 1], acts[l], name, alpha)
    cost = float(np.mean(cost_per_example(net, zs[-1], acts[-1], T)))
    return grad, cost, deltas


def sgd_epoch(net, params, X, Y, perm, batch_size, lr, lmbda=0.0, l1=0.0, momentum=0.0,
              nesterov=False, velocity=None, batch_stats=None):
    """One epoch of mini-batch SGD (torch's momentum/Nesterov equations) on the objective

        mean cost over the batch + (lmbda / 2n) sum ||W||^2 + (l1 / n) sum |W|,

    n = len(X): for momentum 0 this is network2's update rule
    w <- (1 - lr lmbda / n) w - (lr / m) sum nabla_w. Returns the updated params (a copy).
    """
    params = params.copy()
    n = X.shape[0]
    v = np.zeros_like(params) if velocity is None else velocity
    if batch_stats is None:  # batch-normalised layers train on batch statistics
        batch_stats = any(getattr(net, "batch_norm", ()))
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        g, _, _ = backprop(net, params, X[idx], Y[idx], batch_stats)
        gw, _ = split(net, g)
        pw, _ = split(net, params)
        for w, d in zip(pw, gw):
            d += (lmbda / n) * w + (l1 / n) * np.sign(w)
        if momentum:
            v[...] = momentum * v + g
            g = g + momentum * v if nesterov else v
        params -= lr * g
    return params


def adam_step(p, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
              eps_hat=False):
    """torch.optim.Adam / AdamW (decoupled weight_decay) for one step; updates p, m, v in place.
    eps_hat: eps added to sqrt(v) before the bias correction (scikit-learn's form)."""
    if weight_decay:
        p *= 1 - lr * weight_decay
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    bc1 = 1 - beta1 ** t
    bc2 = 1 - beta2 ** t
    if eps_hat:
        p -= (lr * np.sqrt(bc2) / bc1) * m / (np.sqrt(v) + eps)
    else:
        p -= (lr / bc1) * m / (np.sqrt(v) / np.sqrt(bc2) + eps)


def rmsprop_step(p, g, s, lr, rho=0.99, eps=1e-8):
    s[...] = rho * s + (1 - rho) * g * g
    p -= lr * g / (np.sqrt(s) + eps)


def adagrad_step(p, g, s, t, lr, eps=1e-10, lr_decay=0.0):
    s += g * g
    p -= lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
