"""8. fashion: the depth experiment on Fashion-MNIST."""
from .common import Experiment
from .config import Config
from .depth import _depth_on, _figures_depth, _section_depth
from .jobs import run_plan


def experiment_fashion(cfg: Config) -> dict:
    """The depth experiment on Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), a second data set
    of the same shape: does "deeper is not better" hold off MNIST?

    The same networks and protocol as ``depth`` on its 50,000 training / 10,000 validation
    images; one seed unless --seeds is given (it doubles the cost of the depth experiment).
    """
    return run_plan(_fashion_plan, cfg)


def _fashion_plan(cfg):
    from ..datasets import load_fashion_mnist

    d = load_fashion_mnist(cfg.fashion)
    seeds = cfg.seeds if cfg.seeds is not None else 1
    note = (f"Fashion-MNIST ({d.source}): {len(d.X_train)} training / {len(d.X_validation)} "
            f"validation images")
    out = yield from _depth_on(cfg, d, note, False, seeds, "fashion")
    out["dataset"] = "Fashion-MNIST"
    return out


def _figures_fashion(r, out):
    return _figures_depth(r, out, "fashion_depth_accuracy.png")



def _section_fashion(r):
    blocks = _section_depth(r)
    blocks.insert(0, ("p", "The depth experiment again, on Fashion-MNIST (Xiao, Rasul & "
                           "Vollgraf 2017: 28×28 images of ten kinds of clothing, the same "
                           "format as MNIST and harder): does adding sigmoid layers stop "
                           "helping here too? The book has no numbers for it."))
    return blocks


EXPERIMENT = Experiment(
    "fashion", "8. Deeper is not better, on Fashion-MNIST?",
    experiment_fashion, _figures_fashion, _section_fashion, plan=_fashion_plan)
