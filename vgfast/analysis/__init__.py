"""Study tools for vanishing, exploding and unstable gradients (Nielsen, ch. 5; Glorot & Bengio
2010; He et al. 2015; Goodfellow et al. ch. 8).

interval, identity and chain are pure numpy/scipy maths and never touch the compiled engine;
speed, variance, jacobian and curvature analyse whole networks through ``Network.trace`` and
``Network.gradient`` (one engine call over all the examples):

- :mod:`~vgfast.analysis.interval` -- the input activations with ``|w sigma'(w a + b)| >= 1``
  and the width of that interval (ch. 5 problems, eq. 123);
- :mod:`~vgfast.analysis.identity` -- the identity-neuron problem, ``w2 sigma(w1 x + b) + c ~ x``;
- :mod:`~vgfast.analysis.chain` -- the term-by-term gradient of a one-neuron-per-layer chain
  (eqs. 121-122) and the exploding-gradient construction;
- :mod:`~vgfast.analysis.speed` -- the speed of learning ||delta^l|| per layer and per neuron;
- :mod:`~vgfast.analysis.variance` -- activation and gradient variance across layers beside the
  Glorot/He theory, saturation, histograms;
- :mod:`~vgfast.analysis.jacobian` -- input-output Jacobians, the eq. (124) product, W^t powers;
- :mod:`~vgfast.analysis.curvature` -- exact Hessian-vector products, g'Hg, the top eigenvalue,
  damped Newton;
- :mod:`~vgfast.analysis.gradstats` -- Cockpit's first-order instruments of a mini-batch in
  closed form; :mod:`~vgfast.analysis.probes` -- its costlier ones (Hessian trace and largest
  eigenvalue, the step's alpha, histograms of individual gradient elements);
  :mod:`~vgfast.analysis.dashboard` -- their figure.
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

# --- gradient-flow analysis over whole networks (these run through the compiled engine:
# Network.trace / Network.gradient), see speed, variance, jacobian, curvature
from . import curvature, jacobian, speed, variance  # noqa: E402
from .gradstats import GSNR_EPSILON, GradientStatistics, gradient_statistics  # noqa: E402
from .dashboard import INSTRUMENTS, plot_instruments  # noqa: E402
from . import probes  # noqa: E402
from .probes import (  # noqa: E402
    HessianEigenvalue,
    HessianTrace,
    StepAlpha,
    gradient_histogram,
    hessian_max_eigenvalue,
    hessian_trace,
    step_alpha,
)
from .curvature import (  # noqa: E402
    CurvatureAlong,
    HessianOperator,
    NewtonResult,
    TopEigenvalue,
    curvature_along,
    hessian,
    hvp,
    newton,
    top_eigenvalue,
)
from .jacobian import (  # noqa: E402
    BackpropProduct,
    PowerIllustration,
    backprop_product,
    input_output_jacobian,
    jacobian_singular_values,
    plot_power_illustration,
    power_illustration,
)
from .speed import (  # noqa: E402
    GradientNorms,
    gradient_norms,
    neuron_gradients,
    plot_neuron_gradients,
    plot_speed,
    speed_ratio,
)
from .variance import (  # noqa: E402
    BackwardTheory,
    ForwardTheory,
    LayerStatistics,
    Saturation,
    layer_statistics,
    plot_histograms,
    plot_variance_study,
    saturation,
    theory_backward,
    theory_forward,
    variance_study,
)

__all__ += [
    "curvature", "jacobian", "speed", "variance",
    "CurvatureAlong", "HessianOperator", "NewtonResult", "TopEigenvalue", "curvature_along",
    "hessian", "hvp", "newton", "top_eigenvalue",
    "BackpropProduct", "PowerIllustration", "backprop_product", "input_output_jacobian",
    "jacobian_singular_values", "plot_power_illustration", "power_illustration",
    "GradientNorms", "gradient_norms", "neuron_gradients", "plot_neuron_gradients", "plot_speed",
    "speed_ratio",
    "BackwardTheory", "ForwardTheory", "LayerStatistics", "Saturation", "layer_statistics",
    "plot_histograms", "plot_variance_study", "saturation", "theory_backward", "theory_forward",
    "variance_study",
    "GSNR_EPSILON", "GradientStatistics", "gradient_statistics", "INSTRUMENTS",
    "plot_instruments",
    "probes", "HessianEigenvalue", "HessianTrace", "StepAlpha", "gradient_histogram",
    "hessian_max_eigenvalue", "hessian_trace", "step_alpha",
]
