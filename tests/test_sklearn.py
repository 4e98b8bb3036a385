"""vgfast.sklearn against scikit-learn: its estimator checks, and its own MLPs as the oracle.

For the same random_state both draw the same initial parameters, validation split and epoch
orders, so after training the parameters must agree to rounding error (the engine's BLAS sums
in another order than numpy's); any difference in the loss, the L2 scaling, the schedules, the
momentum bookkeeping or the stopping rules shows up as a difference far above that.
"""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network as sknn  # noqa: E402
from sklearn.datasets import (make_classification, make_multilabel_classification,  # noqa: E402
                              make_regression)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import vgfast  # noqa: E402
from vgfast.sklearn import InvalidParameterError, MLPClassifier, MLPRegressor  # noqa: E402

#: parameters agree to this after a few epochs (float64; observed differences are ~1e-15)
ATOL = 1e-10

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ------------------------------------------------------------------ scikit-learn's own checks
# configured as scikit-learn configures its MLPs in its common tests (max_iter=100)
@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ data
def multiclass():
    return make_classification(150, 8, n_informative=5, n_classes=3, random_state=0)


def binary():
    return make_classification(130, 8, random_state=1)


def multilabel():
    return make_multilabel_classification(120, 8, n_classes=4, random_state=0)


def regression(n_targets=1):
    X, y = make_regression(140, 6, n_targets=n_targets, noise=1.0, random_state=0)
    return X, y / 100


def params(est):
    return est.coefs_ + est.intercepts_


def assert_same_fit(ref, est, curve_exact=True):
    """est (vgfast) ended where ref (scikit-learn) did."""
    assert est.n_iter_ == ref.n_iter_
    assert est.t_ == ref.t_
    assert [c.shape for c in est.coefs_] == [c.shape for c in ref.coefs_]
    for a, b in zip(params(est), params(ref)):
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)
    if hasattr(ref, "loss_curve_") and curve_exact:
        np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-10, atol=0)
        if ref.best_loss_ is None:  # early stopping
            assert est.best_loss_ is None
        else:
            assert est.best_loss_ == pytest.approx(ref.best_loss_, rel=1e-10)
    if getattr(ref, "validation_scores_", None) is not None:
        np.testing.assert_allclose(est.validation_scores_, ref.validation_scores_)
        assert est.best_validation_score_ == pytest.approx(ref.best_validation_score_)
    assert est.out_activation_ == ref.out_activation_
    assert est.n_layers_ == ref.n_layers_ and est.n_outputs_ == ref.n_outputs_


# alpha=0 unless said: then loss_curve_ must agree exactly too (see test_loss_curve_l2_term)
CLASSIFIER_CASES = [
    ("multiclass sgd constant", multiclass, dict(solver="sgd", learning_rate_init=0.1,
                                                  batch_size=25, max_iter=6)),
    ("multiclass sgd short last batch", multiclass, dict(solver="sgd", learning_rate_init=0.1,
                                                         batch_size=40, max_iter=6)),
    ("multiclass sgd invscaling", multiclass, dict(solver="sgd", learning_rate="invscaling",
                                                   learning_rate_init=0.5, batch_size=30,
                                                   max_iter=6)),
    ("multiclass sgd adaptive stops", multiclass, dict(solver="sgd", learning_rate="adaptive",
                                                       learning_rate_init=0.2, batch_size=30,
                                                       max_iter=60, tol=1e-2,
                                                       n_iter_no_change=2)),
    ("multiclass sgd tol stop", multiclass, dict(solver="sgd", learning_rate_init=0.1,
                                                 max_iter=200, tol=1e-2, n_iter_no_change=3)),
    ("multiclass sgd plain momentum, no shuffle", multiclass,
     dict(solver="sgd", nesterovs_momentum=False, shuffle=False, learning_rate_init=0.05,
          batch_size=32, max_iter=5)),
    ("multiclass sgd no momentum tanh", multiclass, dict(solver="sgd", momentum=0.0,
                                                         activation="tanh", batch_size=20,
                                                         learning_rate_init=0.1, max_iter=5)),
    ("multiclass adam tiny epsilon", multiclass, dict(solver="adam", epsilon=1e-16,
                                                      batch_size=30, max_iter=6)),
    ("multiclass two hidden layers identity", multiclass,
     dict(solver="sgd", hidden_layer_sizes=(7, 5), activation="identity", batch_size=50,
          learning_rate_init=0.02, max_iter=4)),
    ("multiclass no hidden layer", multiclass, dict(solver="sgd", hidden_layer_sizes=(),
                                                    batch_size=50, max_iter=4)),
    ("binary sgd logistic", binary, dict(solver="sgd", activation="logistic", batch_size=16,
                                         learning_rate_init=0.05, max_iter=6)),
    ("binary early stopping", binary, dict(solver="sgd", activation="tanh", batch_size=16,
                                           early_stopping=True, validation_fraction=0.2,
                                           max_iter=60, tol=1e-3)),
    ("multilabel sgd", multilabel, dict(solver="sgd", batch_size=25, learning_rate_init=0.05,
                                        max_iter=6)),
    ("multiclass lbfgs", multiclass, dict(solver="lbfgs", max_iter=40, alpha=1e-3)),
    ("binary lbfgs max_fun", binary, dict(solver="lbfgs", max_iter=200, max_fun=30)),
]


@pytest.mark.parametrize("name, data, kw", CLASSIFIER_CASES, ids=[c[0] for c in CLASSIFIER_CASES])
def test_classifier_matches_sklearn(name, data, kw):
    X, y = data()
    kw = {"alpha": 0.0, "hidden_layer_sizes": (9,), **kw}
    ref = sknn.MLPClassifier(random_state=0, **kw).fit(X, y)
    est = MLPClassifier(random_state=0, **kw).fit(X, y)
    assert_same_fit(ref, est)
    np.testing.assert_array_equal(est.classes_, ref.classes_)
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), atol=1e-9)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))
    assert est.score(X, y) == ref.score(X, y)


REGRESSOR_CASES = [
    ("sgd", 1, dict(solver="sgd", learning_rate_init=0.01, batch_size=40, max_iter=8)),
    ("sgd two targets", 2, dict(solver="sgd", learning_rate_init=0.01, batch_size=35,
                                max_iter=8)),
    ("adam early stopping", 1, dict(solver="adam", epsilon=1e-16, learning_rate_init=0.01,
                                    early_stopping=True, max_iter=30, batch_size=20)),
    ("lbfgs tanh", 1, dict(solver="lbfgs", activation="tanh", max_iter=30, alpha=1e-2)),
]


@pytest.mark.parametrize("name, n_targets, kw", REGRESSOR_CASES,
                         ids=[c[0] for c in REGRESSOR_CASES])
def test_regressor_matches_sklearn(name, n_targets, kw):
    X, y = regression(n_targets)
    kw = {"alpha": 0.0, "hidden_layer_sizes": (8,), **kw}
    ref = sknn.MLPRegressor(random_state=1, **kw).fit(X, y)
    est = MLPRegressor(random_state=1, **kw).fit(X, y)
    assert_same_fit(ref, est)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), atol=1e-9)
    if kw["solver"] == "lbfgs":
        assert est.loss_ == pytest.approx(ref.loss_, rel=1e-9)


def test_float32_matches_sklearn_float32():
    """float32 X: both compute in float32; they agree to float32 rounding."""
    X, y = multiclass()
    X = X.astype(np.float32)
    kw = dict(solver="sgd", learning_rate_init=0.1, batch_size=25, max_iter=4,
              hidden_layer_sizes=(9,), alpha=0.0)
    ref = sknn.MLPClassifier(random_state=0, **kw).fit(X, y)
    est = MLPClassifier(random_state=0, **kw).fit(X, y)
    assert est.network_.dtype == np.float32 and ref.coefs_[0].dtype == np.float32
    for a, b in zip(params(est), params(ref)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-5)


def test_loss_curve_l2_term(monkeypatch):
    """loss_curve_ is scikit-learn's mean mini-batch loss, its L2 term 0.5 alpha ||W_s||^2 / m
    taken with ||W_s||^2 interpolated linearly over the epoch's steps s = 0..S-1 between the
    values before and after the epoch (the engine does not record ||W|| per step). Recording
    scikit-learn's ||W_s||^2 at every step gives both the exact term and the interpolated one:
    the curves must differ by exactly their difference."""
    from sklearn.neural_network import _stochastic_optimizers as so

    X, y = multiclass()
    kw = dict(solver="sgd", alpha=0.5, batch_size=20, learning_rate_init=0.2, max_iter=4,
              hidden_layer_sizes=(9,))
    sq = []
    update = so.SGDOptimizer.update_params

    def recording(self, params, grads):
        sq.append(sum(float(np.sum(p ** 2)) for p in params[:len(params) // 2]))
        return update(self, params, grads)

    monkeypatch.setattr(so.SGDOptimizer, "update_params", recording)
    ref = sknn.MLPClassifier(random_state=0, **kw).fit(X, y)
    monkeypatch.setattr(so.SGDOptimizer, "update_params", update)
    est = MLPClassifier(random_state=0, **kw).fit(X, y)
    assert_same_fit(ref, est, curve_exact=False)
    S = 8  # 150 rows in batches of 20
    sq.append(sum(float(np.sum(w ** 2)) for w in ref.coefs_))
    sq = np.array(sq)
    exact = sq[:-1].reshape(4, S).sum(axis=1)
    first, after = sq[0:-1:S], sq[S::S]
    interpolated = S * first + (after - first) * (S - 1) / 2
    expected = np.array(ref.loss_curve_) + 0.5 * kw["alpha"] * (interpolated - exact) / len(X)
    np.testing.assert_allclose(est.loss_curve_, expected, rtol=1e-10)
    # one step per epoch: nothing to interpolate, the curve is scikit-learn's
    kw.update(batch_size=len(X), max_iter=10)
    ref = sknn.MLPClassifier(random_state=0, **kw).fit(X, y)
    est = MLPClassifier(random_state=0, **kw).fit(X, y)
    assert_same_fit(ref, est)


def test_adam_default_epsilon_matches_sklearn():
    """scikit-learn's defaults (Adam, epsilon 1e-8, alpha 1e-4) on inputs with always-zero
    columns, whose weights only the L2 term moves, by gradients of the order of epsilon: the
    eps-hat form gives scikit-learn's parameters to rounding (torch's form moved them up to
    0.08 away on MNIST)."""
    X, y = multiclass()
    X = np.hstack([X, np.zeros((X.shape[0], 3))])
    kw = dict(hidden_layer_sizes=(9,), batch_size=30, max_iter=5)
    ref = sknn.MLPClassifier(random_state=0, **kw).fit(X, y)
    est = MLPClassifier(random_state=0, **kw).fit(X, y)
    assert_same_fit(ref, est, curve_exact=False)  # (alpha > 0: the curve's L2 term differs)
    # the zero columns' weights moved (so the test can tell the forms apart) ...
    ref1 = sknn.MLPClassifier(random_state=0, **{**kw, "max_iter": 1}).fit(X, y)
    assert np.abs(ref.coefs_[0][-3:] - ref1.coefs_[0][-3:]).max() > 1e-4
    # ... and torch's form would not give scikit-learn's parameters
    torch_form = MLPClassifier(random_state=0, **kw)
    with pytest.MonkeyPatch.context() as mp:
        real = vgfast.optim.Adam.__init__
        mp.setattr(vgfast.optim.Adam, "__init__",
                   lambda self, *a, **k: real(self, *a, **{**k, "eps_hat": False}))
        torch_form.fit(X, y)
    assert np.abs(torch_form.coefs_[0] - ref.coefs_[0]).max() > 1e-4


def test_partial_fit_and_warm_start_match_sklearn():
    X, y = binary()
    kw = dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, batch_size=25,
              hidden_layer_sizes=(6,), alpha=0.0)
    ref, est = sknn.MLPClassifier(random_state=4, **kw), MLPClassifier(random_state=4, **kw)
    for i in range(3):
        rows = slice(40 * i, 40 * (i + 1))
        ref.partial_fit(X[rows], y[rows], classes=[0, 1])
        est.partial_fit(X[rows], y[rows], classes=[0, 1])
    assert_same_fit(ref, est)
    kw.update(warm_start=True, max_iter=3)
    ref, est = sknn.MLPClassifier(random_state=4, **kw), MLPClassifier(random_state=4, **kw)
    for _ in range(3):
        ref.fit(X, y)
        est.fit(X, y)
    assert_same_fit(ref, est)
    assert len(est.loss_curve_) == 9 and est.history_.epochs == 9
    np.testing.assert_allclose(est.history_.lr[[0, 3, 6]], 0.5)  # a new optimiser each fit


def test_partial_fit_regressor_and_classes():
    X, y = regression()
    ref = sknn.MLPRegressor(random_state=0, solver="sgd", alpha=0.0, batch_size=50)
    est = MLPRegressor(random_state=0, solver="sgd", alpha=0.0, batch_size=50)
    for _ in range(3):
        ref.partial_fit(X, y)
        est.partial_fit(X, y)
    assert_same_fit(ref, est)
    Xc, yc = multiclass()
    clf = MLPClassifier(solver="sgd")
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(Xc, yc)
    clf.partial_fit(Xc[yc < 2], yc[yc < 2], classes=[0, 1, 2])  # a batch without class 2
    assert list(clf.classes_) == [0, 1, 2] and clf.out_activation_ == "softmax"
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(Xc, yc + 5)


def test_partial_fit_only_for_stochastic_solvers():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="sgd"), "partial_fit")


# ------------------------------------------------------------------ the engine's side
def test_coefs_are_views_in_sklearn_layout():
    X, y = multiclass()
    est = MLPClassifier(hidden_layer_sizes=(9, 4), max_iter=3, random_state=0).fit(X, y)
    net = est.network_
    assert [c.shape for c in est.coefs_] == [(8, 9), (9, 4), (4, 3)]
    assert all(np.shares_memory(c, net.params) for c in est.coefs_ + est.intercepts_)
    # the forward pass written out in scikit-learn's layout
    a = X
    for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1]):
        a = np.maximum(a @ W + b, 0)
    z = a @ est.coefs_[-1] + est.intercepts_[-1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(est.predict_proba(X), p / p.sum(axis=1, keepdims=True),
                               atol=1e-12)
    est.coefs_[-1][...] = 0.0
    est.intercepts_[-1][...] = [0.0, 5.0, 0.0]  # writes go to the network
    assert (est.predict(X) == 1).all()
    est.intercepts_ = [b * 0 for b in est.intercepts_]
    assert not any(b.any() for b in est.network_.biases)
    with pytest.raises(ValueError, match="coefs_ must be 3 arrays"):
        est.coefs_ = est.coefs_[:2]


def test_pickle_round_trip_and_continue():
    X, y = multiclass()
    est = MLPClassifier(solver="sgd", hidden_layer_sizes=(7,), max_iter=4, random_state=0,
                        dtype="float32").fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    assert back.network_ is not est.network_
    assert back.network_.dtype == np.float32
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(back.network_.params, est.network_.params)
    assert back.loss_curve_ == est.loss_curve_ and back.get_params() == est.get_params()
    # the optimiser's state went along: partial_fit continues identically
    est.partial_fit(X, y)
    back.partial_fit(X, y)
    np.testing.assert_array_equal(back.network_.params, est.network_.params)
    unfitted = pickle.loads(pickle.dumps(MLPRegressor(alpha=3.0)))
    assert unfitted.alpha == 3.0 and not hasattr(unfitted, "n_iter_")


def test_dtype_follows_x_or_parameter():
    X, y = regression()
    assert MLPRegressor(max_iter=2).fit(X.astype(np.float32), y).network_.dtype == np.float32
    assert MLPRegressor(max_iter=2).fit(X, y).network_.dtype == np.float64
    est = MLPRegressor(max_iter=2, dtype="float32").fit(X, y)
    assert est.network_.dtype == np.float32 and est.predict(X).dtype == np.float32


def test_record_fills_history():
    X, y = multiclass()
    est = MLPClassifier(solver="sgd", batch_size=40, max_iter=3, hidden_layer_sizes=(6, 5),
                        record=("grad_norms", "saturation")).fit(X, y)
    h = est.history_
    steps = 3 * 4  # 150 rows in batches of 40: 4 steps an epoch
    assert isinstance(h, vgfast.History) and h.steps_per_epoch == 4
    assert h.cost.shape == (steps,) and h.grad_norms.shape == (steps, 3)
    assert h.saturation.shape == (steps, 3) and (h.grad_norms > 0).all()
    assert h.lr.shape == (3,)
    # the recorded data term, weighted by rows, is loss_curve_ at alpha = 0
    est = MLPClassifier(solver="sgd", batch_size=40, max_iter=3, alpha=0.0).fit(X, y)
    rows = np.array([40, 40, 40, 30])
    per_epoch = est.history_.cost.reshape(3, 4) @ rows / 150
    np.testing.assert_allclose(per_epoch, est.loss_curve_, rtol=1e-12)
    lb = MLPClassifier(solver="lbfgs", max_iter=5).fit(X, y)
    assert isinstance(lb.history_, vgfast.FullBatchResult)


def test_other_initialisers():
    """init names a vgfast initialiser: He's N(0, 2/n_in) weights, zero biases, seeded by
    random_state (a learning rate of 1e-12 leaves the initial parameters in place)."""
    X, y = make_classification(400, 50, random_state=0)
    kw = dict(init="he_normal", solver="sgd", learning_rate_init=1e-12, max_iter=1,
              hidden_layer_sizes=(200,), random_state=0)
    est = MLPClassifier(**kw).fit(X, y)
    W = est.coefs_[0]
    assert W.shape == (50, 200)
    # 10,000 draws: the sample std is within 4 standard errors (1/sqrt(2 * 10000)) of sqrt(2/50)
    assert abs(W.std() / np.sqrt(2 / 50) - 1) < 4 / np.sqrt(2 * W.size)
    assert np.abs(est.intercepts_[0]).max() < 1e-9
    np.testing.assert_array_equal(MLPClassifier(**kw).fit(X, y).coefs_[0], W)


def test_feature_names_and_pipeline():
    pd = pytest.importorskip("pandas")
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = multiclass()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = MLPClassifier(max_iter=20, random_state=0).fit(df, y)
    assert list(est.feature_names_in_) == list(df.columns) and est.n_features_in_ == 8
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=50, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.6


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("param, value", [
    ("hidden_layer_sizes", (10, 0)), ("hidden_layer_sizes", "10"), ("activation", "sigmoid"),
    ("solver", "rmsprop"), ("alpha", -1.0), ("batch_size", 0), ("batch_size", "big"),
    ("learning_rate", "cosine"), ("learning_rate_init", 0.0), ("max_iter", 0),
    ("momentum", 1.5), ("beta_1", 1.0), ("epsilon", 0.0), ("n_iter_no_change", 0),
    ("validation_fraction", 1.0), ("shuffle", 1), ("dtype", "float16"),
    ("record", ("grad_norms", "nonsense")), ("init", "uniform"), ("random_state", -1),
    ("tol", float("nan")),
])
def test_invalid_parameters_named(param, value):
    X, y = multiclass()
    est = MLPClassifier(max_iter=2).set_params(**{param: value})
    with pytest.raises(InvalidParameterError, match=param):
        est.fit(X, y)
    assert isinstance(InvalidParameterError("x"), ValueError)


def test_refusals():
    X, y = regression()
    with pytest.raises(InvalidParameterError, match="poisson"):
        MLPRegressor(loss="poisson").fit(X, y)
    est = MLPRegressor(max_iter=2, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="architecture"):
        est.set_params(hidden_layer_sizes=(3,)).fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(solver="sgd", early_stopping=True).partial_fit(X, y)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        MLPRegressor(solver="sgd", learning_rate_init=1e12, momentum=0.0,
                     max_iter=5).fit(X, y * 1e150)


# ------------------------------------------------------------------ GridSearchCV on Dask
def test_grid_search_on_dask_local_cluster():
    """GridSearchCV through joblib's dask backend runs its fits as tasks on the cluster and
    finds what the default backend finds, score for score."""
    distributed = pytest.importorskip("dask.distributed")
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, y = binary()
    grid = {"hidden_layer_sizes": [(4,), (16,)], "alpha": [1e-4, 1.0]}
    est = MLPClassifier(max_iter=20, random_state=0)
    local = GridSearchCV(est, grid, cv=3).fit(X, y)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, \
            distributed.get_task_stream(client) as tasks, \
            joblib.parallel_backend("dask"):
        on_dask = GridSearchCV(est, grid, cv=3).fit(X, y)
    # joblib ships the fits in batches, task keys "batch_of__fit_and_score_<k>_calls-..."
    fits = sum(int(t["key"].split("_calls")[0].rsplit("_", 1)[1]) for t in tasks.data
               if "_fit_and_score_" in t["key"])
    assert fits == 4 * 3  # every candidate on every fold ran on the cluster
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_array_equal(on_dask.predict(X), local.predict(X))


def test_predict_from_several_threads():
    """A Network serves one call at a time; the estimator predicts while its network is busy
    (as from several threads at once) with a copy of it."""
    from concurrent.futures import ThreadPoolExecutor

    X, y = multiclass()
    est = MLPClassifier(hidden_layer_sizes=(64,), max_iter=5, random_state=0).fit(X, y)
    expected = est.predict_proba(X)
    with est.network_._using():  # the network is busy, as in another thread's call
        np.testing.assert_array_equal(est.predict_proba(X), expected)
    big = np.repeat(X, 20, axis=0)
    alone = est.predict_proba(big)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(est.predict_proba, [big] * 8))
    for r in results:
        np.testing.assert_array_equal(r, alone)


def test_verbose_prints_scikit_learn_lines(capsys):
    X, y = binary()
    est = MLPClassifier(max_iter=3, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Iteration {k + 1}, loss = {v:.8f}" for k, v in enumerate(est.loss_curve_)]
    MLPClassifier(solver="lbfgs", max_iter=3, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]


ONE_CALL_CASES = [  # batches that divide the rows: the fit's epochs in one train() call
    ("adam defaults", MLPClassifier, multiclass, dict(batch_size=30, max_iter=12)),
    ("adam, stops on tol", MLPClassifier, multiclass,
     dict(batch_size=50, max_iter=40, tol=1e-2, n_iter_no_change=3)),
    ("sgd nesterov", MLPClassifier, multiclass,
     dict(solver="sgd", batch_size=30, learning_rate_init=0.05, max_iter=9, alpha=1e-3)),
    ("sgd invscaling", MLPClassifier, multiclass,
     dict(solver="sgd", learning_rate="invscaling", power_t=0.3, learning_rate_init=0.2,
          batch_size=25, max_iter=8)),
    ("sgd adaptive", MLPClassifier, multiclass,
     dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=2,
          batch_size=50, max_iter=20)),
    ("early stopping", MLPClassifier, binary,
     dict(solver="sgd", batch_size=13, early_stopping=True, validation_fraction=0.2,
          max_iter=30, tol=1e-3)),
    ("no shuffle, verbose", MLPClassifier, multiclass,
     dict(shuffle=False, batch_size=15, max_iter=5, verbose=True)),
    ("regressor, two targets", MLPRegressor, lambda: regression(2),
     dict(solver="sgd", learning_rate_init=0.01, batch_size=35, max_iter=8, alpha=1e-2)),
]


@pytest.mark.parametrize("name, cls, data, kw", ONE_CALL_CASES,
                         ids=[c[0] for c in ONE_CALL_CASES])
def test_epochs_in_one_train_call_equal_one_call_per_epoch(name, cls, data, kw, monkeypatch,
                                                           capsys):
    """A fit of equal mini-batches runs its epochs in one train() call, scikit-learn's
    bookkeeping in the call's callback: the same fit as one call per epoch, bit for bit (the
    parameters, the optimiser's state, the loss curve and scores, the stopping epoch, the
    per-step records, what verbose prints)."""
    from vgfast.sklearn import _base

    X, y = data()
    fits, printed = {}, {}
    for one_call in (True, False):
        monkeypatch.setattr(_base, "_ONE_CALL", one_call)
        fits[one_call] = cls(random_state=0, **kw).fit(X, y)
        printed[one_call] = capsys.readouterr().out
    a, b = fits[True], fits[False]
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    assert 0 < a.n_iter_ <= kw["max_iter"]
    for u, v in zip(params(a), params(b)):
        np.testing.assert_array_equal(u, v)
    assert a.loss_curve_ == b.loss_curve_ and a.loss_ == b.loss_
    assert a.best_loss_ == b.best_loss_ and a.validation_scores_ == b.validation_scores_
    assert a._optimizer.learning_rate == b._optimizer.learning_rate
    for key in b._optimizer.opt.state:
        np.testing.assert_array_equal(a._optimizer.opt.state[key], b._optimizer.opt.state[key])
    np.testing.assert_array_equal(a.history_.cost, b.history_.cost)
    assert a.history_.lr.tolist() == b.history_.lr.tolist()
    assert np.array_equal(a.history_.record_steps, b.history_.record_steps)
    assert a.history_.steps_per_epoch == b.history_.steps_per_epoch
    assert printed[True] == printed[False]
    if "stops" in name or "adaptive" in name or "early" in name:
        assert a.n_iter_ < kw["max_iter"]  # they stop within the call (adaptive: lr cut first)
