"""Content hashes and deterministic seeds, so results can be verified and reproduced."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

_BLOCK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_frame(df: pd.DataFrame) -> str:
    """Return a sha256 of a frame's values, column names and dtypes, independent of its index."""
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def row_seeds(X: np.ndarray, base_seed: int = 0, decimals: int = 6) -> np.ndarray:
    """Derive one 63-bit seed per row from the row's rounded values.

    The same person gets the same seed on any worker and in any rerun, which makes sampled
    estimates reproducible without coordinating random state across processes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Numeric rows.
    base_seed : int, default=0
        Mixed into every seed, so a run can change all streams at once.
    decimals : int, default=6
        Rows are rounded to this many decimals first, so float noise does not change the seed.

    Returns
    -------
    seeds : ndarray of shape (n_samples,), dtype uint64
    """
    Xr = np.ascontiguousarray(np.round(np.asarray(X, dtype=np.float64), decimals) + 0.0)
    seeds = np.empty(len(Xr), dtype=np.uint64)
    salt = int(base_seed).to_bytes(8, "little", signed=True)
    for i, row in enumerate(Xr):
        digest = hashlib.blake2b(row.tobytes(), digest_size=8, key=salt).digest()
        seeds[i] = int.from_bytes(digest, "little") >> 1
    return seeds
