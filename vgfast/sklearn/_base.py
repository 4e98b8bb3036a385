"""What MLPClassifier and MLPRegressor share: scikit-learn's MLP training loop on the engine.

The loop is scikit-learn's (``_fit``, ``_fit_stochastic``, ``_update_no_improvement_count``,
``_fit_lbfgs`` in sklearn/neural_network/_multilayer_perceptron.py, version 1.9), step for step:
the same random draws from ``random_state`` (initialisation, validation split, the order of
every epoch), the same stopping rules and learning-rate changes. What differs is who runs an
epoch: one :func:`vgfast.train` call (two when the last mini-batch is short, see
:meth:`BaseMLP._epoch`) does all its mini-batches in compiled code.

How scikit-learn's objective maps onto the engine's
---------------------------------------------------
scikit-learn's mini-batch loss is mean loss + 0.5 alpha ||W||^2 / m, m the rows of *that*
mini-batch, so its gradient is (A^T delta + alpha W) / m. The engine penalises with
(lmbda / 2n) ||W||^2, n the rows handed to :func:`vgfast.train`; an epoch of n = k m rows in
batches of m therefore gets lmbda = alpha k, and a short last batch of r rows its own call with
lmbda = alpha (coefficient alpha / r, as scikit-learn's). For L-BFGS (full batch, n rows) the
two objectives coincide with lmbda = alpha.

scikit-learn's SGD keeps a velocity v <- mu v - lr g; the engine keeps torch's buffer
b <- mu b + g with the step -lr b. They agree while lr is constant (v = -lr b); when scikit-learn
changes lr between epochs (invscaling, adaptive) the buffer is rescaled by lr_old / lr_new so
they keep agreeing.
"""
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..fullbatch import fit_lbfgs
from ..history import History
from ..network import Network
from ..optim import SGD, Adam, Constant
from ..train import TILES_MIN_EPOCHS, DivergenceError, train
from . import _params

#: out_activation_ -> (vgfast output layer, cost)
OUTPUTS = {"softmax": ("softmax", "log_likelihood"), "logistic": ("sigmoid", "cross_entropy"),
           "identity": ("linear", "quadratic")}
_STOCHASTIC = ("sgd", "adam")
# a fit's epochs of equal mini-batches in one train() call (_epochs_in_one_call); tests switch it
# off to compare with one call per epoch
_ONE_CALL = True


def _shuffle(a, random_state):
    """``sklearn.utils.shuffle(a, random_state=random_state)`` for one array, the same draw
    (``resample`` without replacement shuffles ``arange(n)`` with ``random_state.shuffle``)
    without its parameter validation, which cost 0.6 ms per epoch."""
    order = np.arange(a.shape[0])
    random_state.shuffle(order)
    return a[order]


class _Stepper:
    """scikit-learn's SGDOptimizer / AdamOptimizer bookkeeping around a vgfast optimiser.

    ``learning_rate`` is scikit-learn's current rate (changed between epochs by
    :meth:`iteration_ends` and :meth:`trigger_stopping`); ``opt`` is the vgfast optimiser that
    the engine steps, whose state persists across epochs and partial_fit calls.
    """

    def __init__(self, est):
        self.solver = est.solver
        self.learning_rate_init = float(est.learning_rate_init)
        self.learning_rate = self.learning_rate_init
        self.lr_schedule = est.learning_rate if est.solver == "sgd" else "constant"
        self.power_t = float(est.power_t)
        if est.solver == "sgd":
            mu = float(est.momentum)
            self.opt = SGD(self.learning_rate, momentum=mu,
                           nesterov=bool(est.nesterovs_momentum) and mu > 0)
        else:
            # scikit-learn adds epsilon to sqrt(v) before the bias correction: eps_hat
            self.opt = Adam(self.learning_rate, beta1=float(est.beta_1), beta2=float(est.beta_2),
                            eps=float(est.epsilon), eps_hat=True)
        self._buffer_lr = self.learning_rate  # the lr that the momentum buffer is scaled for

    def before_epoch(self):
        """Hand the engine this epoch's learning rate (SGD: rescale the momentum buffer)."""
        if self.solver != "sgd":
            return
        lr = self.learning_rate
        buf = self.opt.state.get("s1")
        if buf is not None and lr > 0 and lr != self._buffer_lr:
            buf *= self._buffer_lr / lr  # keep -lr * b equal to scikit-learn's velocity
        if lr > 0:
            self._buffer_lr = lr
        self.opt.lr = Constant(lr)

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / np.float64(time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class BaseMLP(BaseEstimator):
    """Shared machinery; use MLPClassifier or MLPRegressor."""

    # ------------------------------------------------------------------ fitted parameters
    @property
    def coefs_(self):
        """Weight matrices, ``coefs_[i]`` of shape (units in layer i, units in layer i + 1):
        writable views (transposed) of the network's flat parameter buffer."""
        check_is_fitted(self, "n_layers_")
        return [w.T for w in self._net.weights]

    @coefs_.setter
    def coefs_(self, values):
        self._set_layers(values, "coefs_", [w.T for w in self._net.weights])

    @property
    def intercepts_(self):
        """Bias vectors, ``intercepts_[i]`` of shape (units in layer i + 1,): writable views."""
        check_is_fitted(self, "n_layers_")
        return list(self._net.biases)

    @intercepts_.setter
    def intercepts_(self, values):
        self._set_layers(values, "intercepts_", list(self._net.biases))

    def _set_layers(self, values, name, views):
        check_is_fitted(self, "n_layers_")
        values = [np.asarray(v) for v in values]
        if len(values) != len(views) or any(v.shape != w.shape for v, w in zip(values, views)):
            raise ValueError(f"{name} must be {len(views)} arrays of shapes "
                             f"{[w.shape for w in views]}; got {[v.shape for v in values]}")
        if not all(v.dtype.kind in "fiu" and np.isfinite(v).all() for v in values):
            raise ValueError(f"{name} must hold finite real numbers")
        for w, v in zip(views, values):
            w[...] = v

    @property
    def network_(self):
        """The fitted :class:`vgfast.Network` (its parameters are the estimator's)."""
        check_is_fitted(self, "n_layers_")
        return self._net

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.pop("_net", None)
        if net is not None:  # a Network holds a compiled engine and a lock: store what rebuilds it
            state["_net_spec"] = {"sizes": list(net.sizes), "activation": list(net.activations),
                                  "output": net.output, "cost": net.cost_name,
                                  "dtype": np.dtype(net.dtype).name,
                                  "params": net.params.copy()}
        return state

    def __setstate__(self, state):
        state = dict(state)
        spec = state.pop("_net_spec", None)
        super().__setstate__(state)
        if spec is not None:
            net = Network(spec["sizes"], activation=spec["activation"], output=spec["output"],
                          cost=spec["cost"], dtype=spec["dtype"], init="glorot_uniform", seed=0)
            net.set_params(spec["params"])
            self._net = net

    # ------------------------------------------------------------------ the network
    def _initialize(self, y, layer_units, dtype):
        """scikit-learn's _initialize: attributes, the network and its initial parameters."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        output, cost = OUTPUTS[self.out_activation_]
        net = Network(layer_units, activation=_params.ACTIVATIONS[self.activation],
                      output=output, cost=cost, init="glorot_uniform", dtype=dtype, seed=0)
        rs = self._random_state
        if self.init == "sklearn":
            # scikit-learn's _init_coef: U(+-sqrt(f / (fan_in + fan_out))), f = 2 for logistic
            # else 6, for weights and biases, drawn layer by layer in its order and shapes
            factor = 2.0 if self.activation == "logistic" else 6.0
            for w, b in zip(net.weights, net.biases):
                fan_out, fan_in = w.shape
                bound = np.sqrt(factor / (fan_in + fan_out))
                w[...] = rs.uniform(-bound, bound, (fan_in, fan_out)).T
                b[...] = rs.uniform(-bound, bound, fan_out)
        else:
            net.initialize(self.init, seed=int(rs.randint(np.iinfo(np.int32).max)))
        self._net = net
        self._best_params = net.params.copy()
        self.__dict__.pop("_optimizer", None)
        self._records = None
        if self.solver in _STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _output(self, X, check_input=True):
        """The network's output for the rows of X: (n, n_outputs_)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"],
                              dtype=(np.float64, np.float32), reset=False)
        if sp.issparse(X):
            X = X.toarray()
        try:
            return self._net.feedforward(X)
        except RuntimeError as e:
            if "in use" not in str(e):
                raise
            # another thread is using the network (a Network serves one call at a time):
            # predict with a snapshot of it, so that the estimator serves threads as
            # scikit-learn's does. The snapshot is read without the network's lock (copy()
            # would wait for it): right for concurrent predictions, which only read; like
            # scikit-learn's, predicting while another thread fits is not supported.
            net = self._net
            snap = type(net)._from_state(net._spec(), net.params.copy(),
                                         np.array(net._engine.running))
            return snap.feedforward(X)

    def _weight_sq(self):
        with np.errstate(over="ignore"):
            return sum(float(np.dot(w.ravel(), w.ravel())) for w in self._net.weights)

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, incremental=False):
        _params.check_params(self)
        hidden = _params.hidden_sizes(self.hidden_layer_sizes)
        first_pass = not hasattr(self, "_net") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sp.issparse(X):
            X = X.toarray()  # the engine is dense
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        n_features = X.shape[1]
        layer_units = [n_features] + hidden + [y.shape[1]]
        if not first_pass and list(self._net.sizes) != layer_units:
            raise ValueError(f"warm_start/partial_fit needs the fitted architecture "
                             f"{list(self._net.sizes)} (input, hidden_layer_sizes, outputs); "
                             f"got {layer_units}")
        self.n_outputs_ = y.shape[1]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            dtype = X.dtype if self.dtype is None else np.dtype(self.dtype)
            self._initialize(y, layer_units, dtype)
        X = np.ascontiguousarray(X, dtype=self._net.dtype)
        try:
            if self.solver in _STOCHASTIC:
                self._fit_stochastic(X, y, incremental)
            else:
                self._fit_lbfgs(X, y)
        except DivergenceError as e:
            raise ValueError(f"Solver produced non-finite parameter weights ({e}). The input "
                             f"data may contain large values and need to be preprocessed.") from e
        return self

    def _targets(self, y):
        """What the engine is given: class indices for softmax outputs, else the target matrix."""
        if self.out_activation_ == "softmax":
            return np.argmax(y, axis=1).astype(np.int64)
        return np.ascontiguousarray(y, dtype=self._net.dtype)

    def _fit_lbfgs(self, X, y):
        def report(it, net, cost):  # it counts iterations from 1 (0 is the starting point)
            print("Iteration %d, loss = %.8f" % (it, cost))

        res = fit_lbfgs(self._net, X, self._targets(y), lmbda=float(self.alpha),
                        maxiter=int(self.max_iter), tol=float(self.tol),
                        max_evals=int(self.max_fun), callback=report if self.verbose else None)
        self.n_iter_ = min(res.nit, self.max_iter)
        if not res.success:
            msg = (f"lbfgs failed to converge after {self.n_iter_} iteration(s):\n"
                   f"{res.message}\n")
            if self.n_iter_ == self.max_iter:
                msg += (f"\nIncrease the number of iterations to improve the convergence "
                        f"(max_iter={self.max_iter}).")
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        loss = res.cost
        if self.out_activation_ == "identity" and self.n_outputs_ > 1:
            # scikit-learn reports the squared error averaged over the outputs too
            pen = 0.5 * self.alpha * self._weight_sq() / X.shape[0]
            loss = (loss - pen) / self.n_outputs_ + pen
        self.loss_ = float(loss)
        self.history_ = res

    def _fit_stochastic(self, X, y, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Stepper(self)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            X_train, X_val, y_train, y_val = train_test_split(
                X, y, random_state=self._random_state, test_size=self.validation_fraction,
                stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, X_val, y_val = X, y, None, None
        X_train = np.ascontiguousarray(X_train)
        T_train = self._targets(y_train)
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped", stacklevel=3)
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        if self._records is None:
            self._records = {"lr": [], "steps": 0}
        # X_train's rows compacted once for the fit's epochs when the sparse first layer reads
        # them (not for partial_fit's one epoch, nor for fewer epochs than pay for it; nor with
        # a short last batch: the epoch then reads a reordered copy)
        tiles = None
        if (not incremental and self.max_iter >= TILES_MIN_EPOCHS
                and n_samples % batch_size == 0):
            with self._net._using() as eng:
                tiles = eng.tile_rows(X_train, batch_size, 1.0, self._record_names())
        stopped = False
        try:
            self.n_iter_ = 0
            if _ONE_CALL and not incremental and n_samples % batch_size == 0:
                stopped = self._epochs_in_one_call(X_train, T_train, sample_idx, batch_size,
                                                   tiles, early_stopping, X_val, y_val)
            else:
                for it in range(self.max_iter):
                    if self.shuffle:
                        sample_idx = _shuffle(sample_idx, self._random_state)
                    loss = self._epoch(X_train, T_train, sample_idx if self.shuffle else None,
                                       batch_size, tiles)
                    stopped = self._epoch_ends(loss, n_samples, early_stopping, X_val, y_val)
                    if stopped or incremental:
                        break
            if not incremental and not stopped and self.n_iter_ == self.max_iter:
                warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                              "optimization hasn't converged yet." % self.max_iter,
                              ConvergenceWarning, stacklevel=3)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        finally:
            self.history_ = self._history()
        if early_stopping:
            self._net.params[...] = self._best_params  # the best epoch's parameters

    def _epoch_ends(self, loss, n_samples, early_stopping, X_val, y_val):
        """scikit-learn's bookkeeping after an epoch whose loss_ is loss: the loss curve, the
        no-improvement count, the learning-rate schedule; True when it stops the fit."""
        self.loss_ = loss
        self.n_iter_ += 1
        self.t_ += n_samples
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
        self._update_no_improvement_count(early_stopping, X_val, y_val)
        self._optimizer.iteration_ends(self.t_)
        if self._no_improvement_count > self.n_iter_no_change:
            if early_stopping:
                msg = ("Validation score did not improve more than tol=%f for %d "
                       "consecutive epochs." % (self.tol, self.n_iter_no_change))
            else:
                msg = ("Training loss did not improve more than tol=%f for %d "
                       "consecutive epochs." % (self.tol, self.n_iter_no_change))
            if self._optimizer.trigger_stopping(msg, self.verbose):
                return True
            self._no_improvement_count = 0
        return False

    def _epochs_in_one_call(self, X, T, sample_idx, batch_size, tiles, early_stopping, X_val,
                            y_val):
        """Up to max_iter epochs of equal mini-batches in one train() call, whose callback does
        after each epoch what the loop of _epoch calls does between them (the loss, the
        records, _epoch_ends, the next epoch's learning rate) and stops the call when
        scikit-learn stops: the same draws, steps and parameters, bit for bit, without a call's
        set-up per epoch. Returns whether the fit stopped before max_iter."""
        n = X.shape[0]
        k = n // batch_size
        record = self._record_names()
        rows = np.full(k, batch_size, dtype=np.float64)
        order = {"idx": sample_idx}
        state = {"sq": self._weight_sq(), "stopped": False}

        def shuffle(epoch, n_rows):
            order["idx"] = _shuffle(order["idx"], self._random_state)
            return order["idx"]

        def epoch_ends(epoch, net, hist):
            costs = np.asarray(hist.cost[-k:])
            self._keep_records(hist, record, k)
            self._records["lr"].append(float(self._optimizer.learning_rate))
            sq_after = self._weight_sq()
            loss = self._epoch_loss(0.0 + float(np.dot(costs, rows)), k, state["sq"], sq_after, n)
            state["sq"] = sq_after
            state["stopped"] = self._epoch_ends(loss, n, early_stopping, X_val, y_val)
            if not state["stopped"] and epoch + 1 < self.max_iter:
                self._optimizer.before_epoch()
            return state["stopped"]

        self._optimizer.before_epoch()
        # (X passed scikit-learn's validation: finite, and it does not change during the call;
        # epoch_ends reads the parameters, never the optimiser's state)
        train(self._net, X, T, epochs=self.max_iter, batch_size=batch_size,
              optimizer=self._optimizer.opt, lmbda=self.alpha * k, record=record,
              record_every="step", monitor=False, shuffle=shuffle if self.shuffle else False,
              seed=0, callback=epoch_ends, _x_finite=True, _x_tiles=tiles,
              _callback_private=True)
        return state["stopped"]

    def _record_names(self):
        """What each epoch's train() records: the cost, then `record`'s names."""
        return ("cost",) + tuple(x for x in ((self.record,) if isinstance(self.record, str)
                                             else self.record) if x != "cost")

    def _epoch(self, X, T, perm, batch_size, tiles=None):
        """One epoch over the rows of X in the order perm (None: as they are); returns
        scikit-learn's loss_ for it: the mean over the epoch's mini-batches of the mini-batch
        loss (data term + 0.5 alpha ||W||^2 / rows), weighted by their rows.

        The data term is what the engine records at each step (before the step's update, as
        scikit-learn computes it). The engine does not record ||W||^2 per step, so the penalty
        term takes it linearly interpolated between the epoch's first and last step from its
        values before and after the epoch (exact at alpha = 0 and for constant ||W||).
        """
        self._optimizer.before_epoch()
        opt, net = self._optimizer.opt, self._net
        n = X.shape[0]
        k, r = divmod(n, batch_size)
        sq_before = self._weight_sq()
        if r == 0:
            calls = [(X, T, batch_size, self.alpha * k,
                      (lambda epoch, n_rows: perm) if perm is not None else False)]
        else:
            if perm is not None:  # scikit-learn's order; the short last batch gets its own call
                X, T = X[perm], T[perm]
            head = k * batch_size
            calls = [(X[:head], T[:head], batch_size, self.alpha * k, False),
                     (X[head:], T[head:], r, self.alpha, False)]
        record = self._record_names()
        data_sum = 0.0
        for Xc, Tc, bs, lmbda, order in calls:
            # (X passed scikit-learn's validation: finite, so train() need not snapshot the
            # network against a bad row)
            h = train(net, Xc, Tc, epochs=1, batch_size=bs, optimizer=opt, lmbda=lmbda,
                      record=record, record_every="step", monitor=False, shuffle=order, seed=0,
                      _x_finite=True, _x_tiles=tiles if Xc is X else None)
            rows = np.full(len(h.cost), bs, dtype=np.float64)
            rows[-1] = Xc.shape[0] - bs * (len(h.cost) - 1)
            data_sum += float(np.dot(h.cost, rows))
            self._keep_records(h, record, len(h.cost))
        self._records["lr"].append(float(self._optimizer.learning_rate))
        return self._epoch_loss(data_sum, k + (r > 0), sq_before, self._weight_sq(), n)

    def _keep_records(self, hist, record, steps):
        """The last `steps` steps' records of the names in `record` from the History of a train()
        call, added to the fit's."""
        for name in record:
            self._records.setdefault(name, []).extend(
                np.asarray(getattr(hist, name)[-steps:]).tolist())
        self._records["steps"] += steps

    def _epoch_loss(self, data_sum, steps, sq_before, sq_after, n):
        """loss_ of an epoch of n rows in `steps` mini-batches: data_sum is the sum of the
        mini-batch costs weighted by their rows; ||W||^2 was sq_before before the epoch and
        sq_after after it (see _epoch)."""
        if self.out_activation_ == "identity":
            data_sum /= self.n_outputs_  # scikit-learn's squared error is averaged over outputs
        # sum over the epoch's steps s = 0..S-1 of ||W_s||^2, W_S being the parameters after it
        sq_sum = steps * sq_before + (sq_after - sq_before) * (steps - 1) / 2.0
        return (data_sum + 0.5 * self.alpha * sq_sum) / n

    def _history(self):
        """The engine's per-step records of every epoch so far, as a History."""
        rec = self._records
        h = History()
        for name, values in rec.items():
            if name not in ("lr", "steps"):
                setattr(h, name, values)
        h.lr = rec["lr"]
        h.record_steps = list(range(1, rec["steps"] + 1))
        h.steps_per_epoch = rec["steps"] // max(len(rec["lr"]), 1)
        return h._finish(self.n_layers_ - 1)

    def _update_no_improvement_count(self, early_stopping, X_val, y_val):
        if early_stopping:
            val_score = self._score(X_val, y_val)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last = self.validation_scores_[-1]
            if last < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last > self.best_validation_score_:
                self.best_validation_score_ = last
                self._best_params = self._net.params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _score_with_function(self, X, y, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred)

    # ------------------------------------------------------------------ public
    def fit(self, X, y):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (sparse input is densified: the engine is dense).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in regression).

        Returns
        -------
        self : object
            The trained model.
        """
        return self._fit(X, y, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC:
            raise AttributeError("partial_fit is only available for stochastic optimizers. %s "
                                 "is not stochastic." % self.solver)
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
