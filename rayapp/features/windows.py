"""Trailing-window arithmetic whose result depends only on the window's own values.

Running sums (pandas `rolling`, TA-Lib's SMA) carry rounding error from wherever they started,
so a chunk that starts elsewhere differs from the single pass in the last bits. Every window here
is summed left to right on its own, so a value at t is the same bits whichever chunk computes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_BLOCK = 4096  # rows per block for the wide comparisons (bounds temporary memory)


def window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """out[i] = x[i-n+1] + ... + x[i], summed left to right; NaN when i < n-1 or a NaN is inside."""
    x = np.asarray(x, dtype="float64")
    out = np.full(len(x), np.nan)
    if len(x) < n:
        return out
    w = sliding_window_view(x, n)
    s = w[:, 0].copy()
    for j in range(1, n):
        s += w[:, j]
    out[n - 1:] = s
    return out


def window_std(x: np.ndarray, n: int) -> np.ndarray:
    """Sample standard deviation (ddof=1) of each trailing n-window; NaN as in `window_sum`."""
    x = np.asarray(x, dtype="float64")
    out = np.full(len(x), np.nan)
    if len(x) < n or n < 2:
        return out
    w = sliding_window_view(x, n)
    mean = window_sum(x, n)[n - 1:] / n
    ss = (w[:, 0] - mean) ** 2
    for j in range(1, n):
        ss += (w[:, j] - mean) ** 2
    out[n - 1:] = np.sqrt(ss / (n - 1))
    return out


def trailing_rank(x: np.ndarray, n: int, min_periods: int) -> np.ndarray:
    """Share of the finite values in x[i-n+1..i] that are <= x[i] (the empirical CDF at x[i]).

    Counting is exact, so the result never depends on where a chunk starts. NaN when x[i] is NaN
    or fewer than `min_periods` values in the window are finite. Windows are truncated at the
    start of the array.
    """
    x = np.asarray(x, dtype="float64")
    m = len(x)
    out = np.full(m, np.nan)
    padded = np.concatenate([np.full(n - 1, np.nan), x])
    w = sliding_window_view(padded, n)
    for b in range(0, m, _BLOCK):
        blk = w[b:b + _BLOCK]
        cur = x[b:b + _BLOCK]
        finite = np.isfinite(blk)
        n_valid = finite.sum(axis=1)
        le = (blk <= cur[:, None]).sum(axis=1)  # NaN compares False
        ok = np.isfinite(cur) & (n_valid >= min_periods)
        out[b:b + _BLOCK] = np.where(ok, le / np.maximum(n_valid, 1), np.nan)
    return out


def run_starts(valid: np.ndarray) -> np.ndarray:
    """For each position, where the unbroken run of valid positions ending there began."""
    idx = np.arange(len(valid))
    last_bad = np.maximum.accumulate(np.where(valid, -1, idx)) if len(valid) else idx
    return last_bad + 1


def trailing_apply(fn: Callable[..., object], arrays: Sequence[np.ndarray], rows: np.ndarray,
                   window: int, min_len: int, n_out: int = 1, **kwargs: object) -> np.ndarray:
    """Run `fn` (a TA-Lib function) on the trailing window ending at each row; keep the last value.

    The window is at most `window` bars and never reaches back over a missing bar, so a value
    depends only on the bars it names (a finite-memory definition the chunked build can
    reproduce exactly). Rows whose window is shorter than `min_len` get NaN.
    Returns shape (len(rows),) or (len(rows), n_out) for functions with several outputs.
    """
    valid = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        valid &= np.isfinite(a)
    starts = run_starts(valid)
    out = np.full((len(rows), n_out), np.nan)
    for k, i in enumerate(rows):
        s = max(int(i) - window + 1, int(starts[i]))
        if not valid[i] or i - s + 1 < min_len:
            continue
        res = fn(*(a[s:i + 1] for a in arrays), **kwargs)
        if n_out == 1:
            out[k, 0] = res[-1]  # type: ignore[index]
        else:
            out[k] = [r[-1] for r in res]  # type: ignore[union-attr]
    return out[:, 0] if n_out == 1 else out
