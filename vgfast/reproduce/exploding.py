"""4. exploding: the book's w = 100, b_j = -w a_(j-1) chain, every term w sigma'(z) = 25."""
import numpy as np

from ..network import Network
from .book import BOOK, SOURCES
from .common import Experiment, _g, _pyplot, _save, _stats
from .config import Config


def experiment_exploding(cfg: Config) -> dict:
    """The book's exploding-gradient construction, term by term, checked against the engine.

    Four one-neuron sigmoid layers, w_j = 100 and b_j = -100 a_{j-1} so every z_j = 0 and every
    term w_j sigma'(z_j) = 100 / 4 = 25. For contrast, 1000 chains drawn with the book's
    standard initialisation w, b ~ N(0, 1).
    """
    from ..analysis import chain_terms, exploding_chain

    depth, w = 4, 100.0
    t = exploding_chain(depth=depth, w=w, x=1.0, y=0.0, cost="quadratic")
    # the same chain on the compiled engine: Network([1, 1, 1, 1, 1]), quadratic cost
    net = Network([1] * (depth + 1), cost="quadratic", seed=0)
    for l in range(depth):
        net.weights[l][...] = t.weights[l]
        net.biases[l][...] = t.biases[l]
    engine = [float(b[0]) for b in net.gradient(np.array([[1.0]]), np.array([[0.0]])).biases]

    rng = np.random.default_rng(0)
    n_random = 1000
    random_grad = np.empty((n_random, depth))
    random_terms = np.empty((n_random, depth))
    for i in range(n_random):
        rt = chain_terms(rng.standard_normal(depth), rng.standard_normal(depth),
                         x=float(rng.uniform()), y=0.0)
        random_grad[i] = np.abs(rt.grad_b)
        random_terms[i] = np.abs(rt.terms)
    ratio = random_grad[:, 0] / random_grad[:, -1]
    return {
        "book_term": BOOK["exploding_term"], "depth": depth, "w": w, "x": 1.0, "y": 0.0,
        "cost": "quadratic",
        "weights": t.weights.tolist(), "biases": t.biases.tolist(), "zs": t.zs.tolist(),
        "activations": t.activations.tolist(), "sigma_primes": t.sigma_primes.tolist(),
        "terms": t.terms.tolist(), "growth": t.growth.tolist(), "grad_b": t.grad_b.tolist(),
        "product_eq122": t.product, "dC_da": t.dC_da,
        "grad_b1_over_grad_bL": float(t.grad_b[0] / t.grad_b[-1]),
        "expected_growth": (w / 4) ** (depth - 1),
        "engine_grad_b": engine,
        "engine_max_rel_error": float(np.max(np.abs(np.array(engine) - t.grad_b)
                                             / np.abs(t.grad_b))),
        "random": {"n": n_random,
                   "abs_grad_b": [_stats(random_grad[:, l]) for l in range(depth)],
                   "abs_terms": _stats(random_terms[:, 1:].ravel()),
                   "fraction_terms_below_quarter": float(np.mean(random_terms[:, 1:] < 0.25)),
                   "ratio_first_last": _stats(ratio),
                   "fraction_exploding": float(np.mean(ratio > 1))},
    }


def _figures_exploding(r, out):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    layers = np.arange(1, r["depth"] + 1)
    ax.plot(layers, np.abs(r["grad_b"]), "o-", color="C3",
            label=f"w = {r['w']:g}, z_j = 0: each term w σ′(z) = {r['terms'][0]:g}")
    rnd = r["random"]["abs_grad_b"]
    ax.plot(layers, [s["median"] for s in rnd], "o-", color="C0",
            label=f"w, b ~ N(0, 1): median of {r['random']['n']} chains")
    ax.fill_between(layers, [s["p5"] for s in rnd], [s["p95"] for s in rnd], color="C0",
                    alpha=0.2, label="5–95 %")
    ax.set_yscale("log")
    ax.set_xticks(layers)
    ax.set_xlabel("layer j (1 = nearest the input)")
    ax.set_ylabel(r"$|\partial C/\partial b_j|$")
    ax.set_title("One neuron per layer: exploding vs vanishing gradient", fontsize=10)
    ax.legend(fontsize=7)
    return [_save(fig, out, "exploding_chain.png",
                  "|∂C/∂b_j| along a four-layer one-neuron chain: the book's construction grows "
                  "25× per layer towards the input; the standard initialisation shrinks it.")]


def _section_exploding(r):
    rows = []
    for j in range(r["depth"]):
        rows.append([str(j + 1), _g(r["weights"][j]), _g(r["biases"][j], 6), _g(r["zs"][j]),
                     _g(r["sigma_primes"][j]), _g(r["terms"][j]), "25",
                     _g(r["grad_b"][j], 6), _g(r["engine_grad_b"][j], 6)])
    rnd = r["random"]
    return [
        ("p", f"Four sigmoid neurons in a chain, input a₀ = {r['x']:g}, quadratic cost against "
              f"y = {r['y']:g}. The book: w₁ = … = w₄ = 100 and b_j = −100 a_(j−1), so every "
              f"z_j = 0, σ′(z_j) = 1/4 and every term w_j σ′(z_j) = 25 (exact in floating "
              f"point). ∂C/∂b_j is computed by the chain rule of eq. 122 (vgfast.analysis.chain) "
              f"and, independently, by the compiled engine on Network([1, 1, 1, 1, 1]). "
              f"Compared with: {SOURCES['book']}, section \"The exploding gradient "
              f"problem\"."),
        ("table", ["j", "w_j", "b_j", "z_j", "σ′(z_j)", "w_j σ′(z_j) ours", "book",
                   "∂C/∂b_j (chain rule)", "∂C/∂b_j (engine)"], rows),
        ("p", f"Growth towards the input: ∂C/∂b₁ / ∂C/∂b₄ = {r['grad_b1_over_grad_bL']:g} = "
              f"25³ = {r['expected_growth']:g}; the engine agrees to a relative "
              f"{r['engine_max_rel_error']:.1e}. With the standard initialisation w, b ~ "
              f"N(0, 1) instead ({rnd['n']} random chains), "
              f"{100 * rnd['fraction_terms_below_quarter']:.0f} % "
              f"of the terms |w σ′(z)| are below 1/4 and ∂C/∂b₁ / ∂C/∂b₄ has median "
              f"{_g(rnd['ratio_first_last']['median'])} (above 1 in "
              f"{100 * rnd['fraction_exploding']:.1f} % of chains): the gradient usually "
              f"vanishes."),
    ]


EXPERIMENT = Experiment(
    "exploding", "4. The exploding gradient: w = 100, every term 25",
    experiment_exploding, _figures_exploding, _section_exploding)
