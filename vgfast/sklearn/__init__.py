"""scikit-learn estimators on vgfast's engine: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in replacements for :mod:`sklearn.neural_network`'s estimators of the same names (the same
parameters, defaults, fitted attributes and methods, and the same random draws for the same
``random_state``) that train each epoch in one compiled call. They work in Pipelines,
cross-validation and GridSearchCV, and pickle. Needs scikit-learn (``pip install vgfast[sklearn]``).

>>> from vgfast.sklearn import MLPClassifier
>>> clf = MLPClassifier(hidden_layer_sizes=(100,), random_state=0).fit(X, y)
"""
try:
    import sklearn  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("vgfast.sklearn needs scikit-learn: pip install 'vgfast[sklearn]'") from e

from ._mlp import MLPClassifier, MLPRegressor
from ._params import InvalidParameterError

__all__ = ["MLPClassifier", "MLPRegressor", "InvalidParameterError"]
