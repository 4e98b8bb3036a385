"""MLPClassifier and MLPRegressor: scikit-learn's estimators, trained by vgfast's engine."""
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseMLP
from ._params import InvalidParameterError

_PARAMETERS = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'sgd' and 'adam' train by mini-batches, one engine call per epoch; 'lbfgs' minimises
        the full-batch objective with scipy's L-BFGS-B (:func:`vgfast.fit_lbfgs`).
    alpha : float, default=0.0001
        L2 strength as scikit-learn scales it: each mini-batch of m rows adds
        0.5 * alpha * ||W||^2 / m to its loss (m = all rows for 'lbfgs'). Biases are not
        penalised.
    batch_size : int or 'auto', default='auto'
        Rows per mini-batch; 'auto' is min(200, n_samples). Larger than the data: clipped.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        SGD's schedule: 'invscaling' uses learning_rate_init / (t + 1) ** power_t after each
        epoch, t the samples seen; 'adaptive' divides the rate by 5 whenever the loss (or the
        validation score) stalls for n_iter_no_change epochs, stopping below 1e-6.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs at most (stochastic solvers), iterations at most ('lbfgs').
    shuffle : bool, default=True
        Reorder the rows each epoch (stochastic solvers).
    random_state : int, RandomState instance or None, default=None
        Draws the initial parameters, the validation split and each epoch's order, in
        scikit-learn's order: the same value gives the same draws as scikit-learn's estimator.
    tol : float, default=1e-4
        Training stops (or, 'adaptive', the rate drops) when the loss has not decreased by tol
        (or the validation score increased by tol) for n_iter_no_change consecutive epochs;
        for 'lbfgs' the gradient tolerance.
    verbose : bool or int, default=False
        Print the loss after each epoch.
    warm_start : bool, default=False
        Start fit from the current parameters (same classes and architecture).
    momentum : float, default=0.9
        SGD momentum in [0, 1].
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out validation_fraction of the rows (stratified for single-output
        classification), stop on the validation score and keep the best epoch's parameters.
    validation_fraction : float, default=0.1
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float, default=1e-8
        Adam's epsilon, added to sqrt(v) before the bias correction, as scikit-learn does
        (``vgfast.Adam(eps_hat=True)``; torch adds it to sqrt(v-hat)).
    n_iter_no_change : int or numpy.inf, default=10
    max_fun : int, default=15000
        'lbfgs': objective evaluations at most (one engine pass each).
    dtype : {None, 'float64', 'float32'}, default=None
        vgfast's: the network's floating type; None follows X (float32 X trains in float32,
        anything else in float64), as scikit-learn does. 'float32' is about twice as fast.
    record : sequence of str, default=()
        vgfast's: statistics the engine records at every mini-batch step into ``history_``
        (``grad_norms``, ``weight_grad_norms``, ``activation_mean``, ``activation_std``,
        ``saturation``, ``dead_fraction``, ``update_ratio``; ``cost`` is always recorded).
    init : str, default='sklearn'
        vgfast's: 'sklearn' is scikit-learn's Glorot-uniform draw (weights and biases
        U(+-sqrt(6 / (fan_in + fan_out))), 2 instead of 6 for logistic), the same numbers as
        scikit-learn's for the same random_state; or a name from :mod:`vgfast.init`.
"""

_ATTRIBUTES = """
    loss_ : float
        The loss of the last epoch (stochastic solvers) or at the solution ('lbfgs').
    best_loss_ : float or None
        The lowest loss_curve_ value (None with early_stopping).
    loss_curve_ : list of float
        Per epoch, the mean over its mini-batches of the mini-batch loss (data term + L2
        term), as scikit-learn defines it. The data term is recorded by the engine at each step;
        the L2 term takes ||W||^2 interpolated linearly over the epoch's steps between its
        values before and after the epoch (the engine does not record ||W|| per step). It is
        scikit-learn's exactly when alpha = 0 or an epoch is one mini-batch, and close
        otherwise (the difference is 0.5 alpha / n_samples times the interpolation error of
        the sum of ||W||^2 over the epoch's steps).
    validation_scores_ : list of float or None
        Per epoch, the score on the held-out rows (early_stopping).
    best_validation_score_ : float or None
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray
        coefs_[i] is the (units in layer i, units in layer i + 1) weight matrix: a writable
        view of the network's flat parameter buffer.
    intercepts_ : list of ndarray
        intercepts_[i], the biases of layer i + 1 (views likewise).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X has string column names.
    n_iter_ : int
        Epochs run by the last fit (stochastic) or L-BFGS iterations.
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
    network_ : vgfast.Network
        The fitted network.
    history_ : vgfast.History or vgfast.FullBatchResult
        Stochastic solvers: what the engine recorded at each mini-batch step of every epoch
        since the estimator was (re)initialised (``cost``, the mean mini-batch loss without
        the L2 term, and the statistics asked for in ``record``) and ``lr``, the learning rate
        of each epoch. 'lbfgs': the FullBatchResult (objective per iteration, evaluations).
"""

_NOTES = """
    Differences from scikit-learn: no ``sample_weight`` (the engine averages a mini-batch
    uniformly); sparse X is densified; the reported log-loss is not clipped at machine epsilon;
    see ``loss_curve_``. With several regression targets, 'lbfgs' minimises the
    half squared error summed over the targets, the objective whose gradient scikit-learn uses
    (scikit-learn's objective value divides the data term by the number of targets, as
    ``loss_`` does here), so the two line searches can end in different places.
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = f"""Multi-layer perceptron classifier: scikit-learn's MLPClassifier on vgfast's engine.

    The same parameters, defaults, fitted attributes and methods as
    :class:`sklearn.neural_network.MLPClassifier`: it minimises the log-loss with a softmax
    output layer (multiclass) or logistic outputs (binary, multilabel), by mini-batch SGD or
    Adam (each epoch one compiled call) or by L-BFGS.

    Parameters
    ----------{_PARAMETERS}
    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels (multilabel: one indicator per column).{_ATTRIBUTES}
    Notes
    -----{_NOTES}
    Examples
    --------
    >>> from vgfast.sklearn import MLPClassifier
    >>> clf = MLPClassifier(hidden_layer_sizes=(100,), random_state=0).fit(X_train, y_train)
    >>> clf.predict_proba(X_test[:2]), clf.score(X_test, y_test)
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, record=(), init="sklearn"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.record = record
        self.init = init

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def predict(self, X):
        """Predict the class of each row of X.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes) (multilabel)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._output(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y):
        return self._score_with_function(X, y, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, classes=None):
        """Update the model with one epoch over the given data (sgd and adam only).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        classes : array of shape (n_classes,), default=None
            Every class of the whole data; required in the first call.

        Returns
        -------
        self : object
        """
        if getattr(self, "classes_", None) is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        first_call = False
        if classes is not None:
            if getattr(self, "classes_", None) is not None:
                if not np.array_equal(self.classes_, unique_labels(classes)):
                    raise ValueError(f"`classes={classes!r}` is not the same as on last call "
                                     f"to partial_fit, was: {self.classes_!r}")
            else:
                self.classes_ = unique_labels(classes)
                first_call = True
        if first_call:
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True)

    def predict_proba(self, X):
        """Probability of each class for each row of X.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes), classes ordered as in classes_.
        """
        check_is_fitted(self)
        y_pred = self._output(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = f"""Multi-layer perceptron regressor: scikit-learn's MLPRegressor on vgfast's engine.

    The same parameters, defaults, fitted attributes and methods as
    :class:`sklearn.neural_network.MLPRegressor`: identity outputs, half squared error.

    Parameters
    ----------
    loss : {{'squared_error'}}, default='squared_error'
        Half squared error. scikit-learn's 'poisson' needs an exponential output layer, which
        the engine does not have: it is refused.{_PARAMETERS}
    Attributes
    ----------{_ATTRIBUTES}
    Notes
    -----{_NOTES}
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, record=(), init="sklearn"):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.record = record
        self.init = init

    def _out_activation(self):
        return "identity"

    def _fit(self, X, y, incremental=False):
        if not (isinstance(self.loss, str) and self.loss == "squared_error"):
            raise InvalidParameterError(
                f"loss must be 'squared_error'; got {self.loss!r} (scikit-learn's 'poisson' "
                f"needs an exponential output layer, which vgfast's engine does not have)")
        return super()._fit(X, y, incremental)

    def predict(self, X):
        """Predict the target(s) of each row of X.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._output(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y):
        return self._score_with_function(X, y, r2_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y):
        """Update the model with one epoch over the given data (sgd and adam only).

        Returns
        -------
        self : object
        """
        return self._fit(X, y, incremental=True)

