"""Containers that keep a Network's Python view and its compiled engine in step.

The engine is built once from the architecture (sizes, activations, dtype, ...) and reads the
parameters from one flat buffer. So the architecture is read-only after construction
(:class:`FixedList`, :class:`Fixed`), and the per-layer parameter lists (:class:`Layers`) copy
an assigned array into the buffer instead of rebinding an entry the engine would never see.
"""
import weakref

import numpy as np


def _refuse(name, what):
    def method(self, *args, **kwargs):
        raise TypeError(f"net.{self._name} " + what.format(name=self._name))
    method.__name__ = name
    return method


class FixedList(list):
    """A list that cannot change: an architecture attribute (``net.sizes``, ...).

    It compares equal to a list with the same entries; every mutation raises TypeError.
    """

    _why = ("is fixed when the Network is built (its compiled engine is built from it); "
            "build a new vgfast.Network with the architecture you want")

    def __init__(self, values, name):
        super().__init__(values)
        self._name = name

    for _m in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend",
               "insert", "pop", "remove", "clear", "sort", "reverse"):
        locals()[_m] = _refuse(_m, _why)
    del _m

    def __reduce__(self):  # pickles (and copies) as a plain list
        return list, (list(self),)


class Layers(list):
    """One writable parameter view per layer (``net.weights``, ``net.biases``, ...).

    ``layers[l] = values`` copies ``values`` into the network's parameter buffer (checked: shape,
    real dtype, finite in the network's dtype); the number of entries is fixed by the
    architecture, so ``append``, ``del``, slices and the like raise TypeError.
    """

    def __init__(self, views, name, assign, low=None):
        super().__init__(views)
        self._name = name
        self._low = low  # the smallest value allowed (a variance: 0), or None
        # assign: a bound method (list of (view, values)) -> None that writes under the
        # network's lock; held weakly, so the network is freed as soon as it is unused
        self._assign_ref = weakref.WeakMethod(assign)

    def _assign(self, pairs):
        assign = self._assign_ref()
        if assign is None:  # the network is gone; the views still own their memory
            for view, values in pairs:
                view[...] = values
        else:
            assign(pairs)

    def __setitem__(self, l, value):
        if isinstance(l, slice) or not isinstance(l, (int, np.integer)) or isinstance(l, bool):
            raise TypeError(f"net.{self._name}[...] takes one layer index; to replace every "
                            f"layer assign a list: net.{self._name} = [...]")
        view = list.__getitem__(self, l)  # IndexError for a layer that does not exist
        if view is None:
            raise ValueError(f"net.{self._name}[{l}]: layer {l} is not batch-normalised; it has "
                             f"no {self._name.split('_')[-1]}")
        self._assign([(view, layer_values(value, view.shape, view.dtype,
                                          f"net.{self._name}[{l}]", self._low))])

    for _m in ("__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "pop",
               "remove", "clear", "sort", "reverse"):
        locals()[_m] = _refuse(_m, "has one entry per layer, fixed by the architecture; assign "
                                   "net.{name}[l] = array to change a layer's values")
    del _m

    def __reduce__(self):  # pickles (and copies) as a plain list of arrays
        return list, (list(self),)


def layer_values(value, shape, dtype, name, low=None):
    """``value`` as a finite array of ``shape`` in ``dtype`` (each >= ``low`` when given), or an
    error naming ``name``."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be an array of real numbers: {e}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {arr.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        arr = arr.astype(dtype)  # checked after the cast: 1e39 is Inf in float32
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf (in {np.dtype(dtype).name})")
    if low is not None and (arr < low).any():
        raise ValueError(f"{name} must be >= {low}; got a minimum of {arr.min()!r}")
    return arr


class Fixed:
    """A read-only architecture attribute stored as ``_<name>``; assigning it raises."""

    def __set_name__(self, owner, name):
        self.name = name
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj.__dict__[self.slot]

    def __set__(self, obj, value):
        raise AttributeError(f"net.{self.name} is fixed when the Network is built (its compiled "
                             f"engine is built from it); build a new vgfast.Network with "
                             f"{self.name}={value!r} and copy parameters in with set_params "
                             f"where the shapes agree")

    def __delete__(self, obj):
        raise AttributeError(f"net.{self.name} cannot be deleted")
