"""Study tools for vanishing, exploding and unstable gradients (Nielsen, ch. 5).

The modules imported here are pure numpy/scipy maths and never touch the compiled engine:

- :mod:`~vgfast.analysis.interval` -- the input activations with ``|w sigma'(w a + b)| >= 1``
  and the width of that interval (ch. 5 problems, eq. 123);
- :mod:`~vgfast.analysis.identity` -- the identity-neuron problem, ``w2 sigma(w1 x + b) + c ~ x``;
- :mod:`~vgfast.analysis.chain` -- the term-by-term gradient of a one-neuron-per-layer chain
  (eqs. 121-122) and the exploding-gradient construction.
"""

from . import chain, identity, interval
from .chain import ChainTerms, chain_cost, chain_terms, exploding_chain
from .identity import (
    IdentityNeuron,
    identity_error_curve,
    identity_error_exact,
    identity_neuron,
    plot_identity_error,
)
from .interval import (
    Interval,
    admissible_interval,
    has_solution,
    interval_width,
    max_interval_width,
    plot_admissible_interval,
    plot_interval_width,
    sigmoid,
    sigmoid_prime,
)

__all__ = [
    "chain", "identity", "interval",
    "ChainTerms", "chain_cost", "chain_terms", "exploding_chain",
    "IdentityNeuron", "identity_error_curve", "identity_error_exact", "identity_neuron",
    "plot_identity_error",
    "Interval", "admissible_interval", "has_solution", "interval_width", "max_interval_width",
    "plot_admissible_interval", "plot_interval_width", "sigmoid", "sigmoid_prime",
]
