"""Type stubs for the compiled engine (vgfast/_core.pyx)."""
from typing import Optional, Sequence

import numpy as np

class Engine:
    L: int
    dtype: np.dtype
    n_params: int
    rows: int
    running: np.ndarray
    def __init__(self, sizes: Sequence[int], act: Sequence[int], alpha: Sequence[float],
                 cost: int, dtype: object, bn: Optional[Sequence[int]] = ...,
                 bn_eps: float = ..., bn_momentum: float = ...) -> None: ...
    @property
    def workspace_bytes(self) -> int: ...
    def forward(self, params: np.ndarray, X: np.ndarray, out: np.ndarray,
                chunk: int = ...) -> None: ...
    def gradient(self, params: np.ndarray, X: np.ndarray, Y: Optional[np.ndarray],
                 labels: Optional[np.ndarray], grad: Optional[np.ndarray], chunk: int = ...,
                 cost_only: bool = ..., batch_stats: bool = ...) -> float: ...
    def trace(self, params: np.ndarray, X: np.ndarray, Y: Optional[np.ndarray] = ...,
              labels: Optional[np.ndarray] = ..., batch_stats: bool = ...
              ) -> tuple[list[np.ndarray], list[np.ndarray], Optional[list[np.ndarray]]]: ...
    def train_epoch(self, params: np.ndarray, grad: np.ndarray, X: np.ndarray,
                    Y: Optional[np.ndarray], labels: Optional[np.ndarray], perm: np.ndarray,
                    batch_size: int, opt_kind: int, hyper: Sequence[float], wd: float,
                    lr: np.ndarray, mom: Optional[np.ndarray], s1: np.ndarray, s2: np.ndarray,
                    t: int, l2: float, l1: float, clip: int, clip_c: float, max_norm_c: float,
                    keep: np.ndarray, seed: int, counter: int, rec_every: int,
                    rec_gb: Optional[np.ndarray], rec_gw: Optional[np.ndarray],
                    rec_cost: Optional[np.ndarray], rec_prenorm: Optional[np.ndarray],
                    rec_more: Optional[dict] = ...) -> tuple[int, int, int, int, int, int]: ...

def philox_uniform(seed: int, counter: int, n: int) -> np.ndarray: ...
def optimizer_step(kind: int, p: np.ndarray, g: np.ndarray, s1: np.ndarray, s2: np.ndarray,
                   hyper: Sequence[float], t: int) -> bool: ...
