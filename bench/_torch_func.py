"""Issue 12's first-order quantities from torch.func: the PyTorch peer of vgfast's
gradient statistics, shared by bench/test_gradient_statistics.py (the Python function) and
bench/test_recorded_statistics.py (the recording inside train()'s loop).

``vmap(grad(loss))`` over the rows with ``functional_call`` on an ``nn.Sequential`` gives the
per-example gradients (as Cockpit/BackPACK's ``BatchGrad``); then, per parameter tensor, the
sums Cockpit's quantities use (``||g_i||^2``, ``g_i.gbar``, ``sum_i g_ij^2``) and the formulas,
per layer and in total. Needs torch (``_workloads.torch`` is None without it).
"""
import numpy as np

import _workloads as W

EPS = 1e-5  # Cockpit's MeanGSNR epsilon (vgfast's default)


class TorchStatistics:
    """The same quantities from torch.func's per-example gradients (vmap of grad).

    TorchStatistics(net, X, y)() -> dict of torch tensors named as GradientStatistics' fields,
    for the rows X (labels y) at net's parameters when the object was built (a copy).
    """

    def __init__(self, net, X, y):
        torch = W.torch
        from torch.func import functional_call, grad, vmap

        tdt = {"float64": torch.float64, "float32": torch.float32}[np.dtype(net.dtype).name]
        self.model = W.torch_mlp(list(net.sizes), tdt)
        linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, net.weights, net.biases):
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
        self.params = {k: v.detach() for k, v in self.model.named_parameters()}
        self.X = torch.from_numpy(np.array(X, net.dtype))  # a writable copy
        self.T = torch.from_numpy(W.one_hot(y, net.sizes[-1], net.dtype))
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def loss(params, x, t):  # example i's own cost: cross-entropy summed over the outputs
            z = functional_call(self.model, params, (x[None],))
            return bce(z[0], t, reduction="sum")

        self.per_example = vmap(grad(loss), in_dims=(None, 0, 0))
        self.torch = torch

    def __call__(self):
        """Per parameter tensor, the sums Cockpit forms from BackPACK's per-example gradients
        (||g_i||^2, g_i.gbar, ||gbar||^2, sum_i g_ij^2), then the formulas; no concatenation."""
        torch = self.torch
        g = self.per_example(self.params, self.X, self.T)
        m = self.X.shape[0]
        names = list(self.params)
        sq, layer = 0, []
        for w, b in zip(names[::2], names[1::2]):  # layer l: its weight and bias tensors
            gbars = [g[k].reshape(m, -1).mean(0) for k in (w, b)]
            gg = sum(gb @ gb for gb in gbars)
            sq_l, dots_l, gsnr_sum, n = 0, 0, 0, 0
            for k, gb in zip((w, b), gbars):
                G = g[k].reshape(m, -1)
                sq_l = sq_l + (G * G).sum(1)
                dots_l = dots_l + G @ gb
                gsnr_sum = gsnr_sum + (gb ** 2 / ((G * G).mean(0) - gb ** 2 + EPS)).sum()
                n += gb.numel()
            layer.append((sq_l, dots_l, gg, gsnr_sum, n))
            sq = sq + sq_l
        dots = sum(x[1] for x in layer)
        gg = sum(x[2] for x in layer)
        tc = (sq.sum() - m * gg) / (m - 1)
        layer_gg = torch.stack([x[2] for x in layer])
        layer_tc = (torch.stack([x[0].sum() for x in layer]) - m * layer_gg) / (m - 1)
        return dict(
            sq_norms=sq, grad_norm=gg.sqrt(), trace_cov=tc, noise_scale=tc / gg,
            norm_test=(tc / (m * gg)).sqrt(),
            inner_test=(((dots - gg) ** 2).sum() / (m - 1) / (m * gg ** 2)).sqrt(),
            ortho_test=((sq.sum() - (dots ** 2).sum() / gg) / (m - 1) / (m * gg)).sqrt(),
            gsnr=sum(x[3] for x in layer) / sum(x[4] for x in layer),
            layer_grad_norm=layer_gg.sqrt(), layer_trace_cov=layer_tc,
            layer_noise_scale=layer_tc / layer_gg,
            layer_norm_test=(layer_tc / (m * layer_gg)).sqrt(),
            layer_gsnr=torch.stack([x[3] / x[4] for x in layer]))
