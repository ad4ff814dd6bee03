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
    out[n - 1 :] = s
    return out


def window_std(x: np.ndarray, n: int) -> np.ndarray:
    """Sample standard deviation (ddof=1) of each trailing n-window; NaN as in `window_sum`."""
    x = np.asarray(x, dtype="float64")
    out = np.full(len(x), np.nan)
    if len(x) < n or n < 2:
        return out
    w = sliding_window_view(x, n)
    mean = window_sum(x, n)[n - 1 :] / n
    ss = (w[:, 0] - mean) ** 2
    for j in range(1, n):
        ss += (w[:, j] - mean) ** 2
    out[n - 1 :] = np.sqrt(ss / (n - 1))
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
        blk = w[b : b + _BLOCK]
        cur = x[b : b + _BLOCK]
        finite = np.isfinite(blk)
        n_valid = finite.sum(axis=1)
        le = (blk <= cur[:, None]).sum(axis=1)  # NaN compares False
        ok = np.isfinite(cur) & (n_valid >= min_periods)
        out[b : b + _BLOCK] = np.where(ok, le / np.maximum(n_valid, 1), np.nan)
    return out


def run_starts(valid: np.ndarray) -> np.ndarray:
    """For each position, where the unbroken run of valid positions ending there began."""
    idx = np.arange(len(valid))
    last_bad = np.maximum.accumulate(np.where(valid, -1, idx)) if len(valid) else idx
    return last_bad + 1


def trailing_apply(
    fn: Callable[..., object],
    arrays: Sequence[np.ndarray],
    rows: np.ndarray,
    epoch_h: np.ndarray,
    window: int,
    block: int,
    min_len: int,
    n_out: int = 1,
    **kwargs: object,
) -> np.ndarray:
    """The value TA-Lib's `fn` gives at each row when run from that row's window start.

    Hours are cut into `block`-hour blocks aligned on the Unix epoch (so the cut is the same for
    every chunk). A row's window starts `window` bars before the start of its block, or after
    the last missing bar if that is later: it covers between `window` and `window + block - 1`
    bars, and one TA-Lib call serves a whole block (TA-Lib is causal: its value at a position
    never depends on later input). A value therefore depends only on the bars it names, the
    finite-memory definition the chunked build reproduces exactly. Rows whose window is shorter
    than `min_len` get NaN. Returns shape (len(rows),) or (len(rows), n_out).
    """
    valid = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        valid &= np.isfinite(a)
    rows = np.asarray(rows, dtype=np.int64)
    out = np.full((len(rows), n_out), np.nan)
    if len(rows) == 0:
        return out[:, 0] if n_out == 1 else out
    anchor = rows - (epoch_h[rows] % block)
    w = np.maximum(np.maximum(anchor - window + 1, run_starts(valid)[rows]), 0)
    ok = valid[rows] & (rows - w + 1 >= min_len)
    # w never decreases with the row, so each window start is one contiguous run of rows.
    cut = np.flatnonzero(np.diff(w)) + 1
    for grp in np.split(np.arange(len(rows)), cut):
        grp = grp[ok[grp]]
        if len(grp) == 0:
            continue
        s, last = int(w[grp[0]]), int(rows[grp[-1]])
        res = fn(*(np.ascontiguousarray(a[s : last + 1]) for a in arrays), **kwargs)
        pos = rows[grp] - s
        if n_out == 1:
            out[grp, 0] = np.asarray(res)[pos]
        else:
            for j in range(n_out):
                out[grp, j] = np.asarray(res[j])[pos]  # type: ignore[index]
    return out[:, 0] if n_out == 1 else out
