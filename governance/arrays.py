"""Grouping of equal rows: the array idiom the searches, responsiveness and stability share."""

from __future__ import annotations

import numpy as np


def unique_rows(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``M`` (sorted) and, per row, the index of its distinct row."""
    if M.shape[1] == 0:
        return M[:1], np.zeros(len(M), dtype=np.int64)
    U, inv = np.unique(M, axis=0, return_inverse=True)
    return U, np.asarray(inv).ravel()


def any_of_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`first_of_groups` for small non-negative integer keys, without sorting:
    some row of every group (the same group order as their representatives' rows)."""
    table = np.empty(int(keys.max()) + 1, dtype=np.int64)
    table[keys] = np.arange(len(keys))  # one writer per key wins; any member will do
    rep = table[keys]
    mark = np.zeros(len(keys), dtype=bool)
    mark[rep] = True
    reps = np.flatnonzero(mark)
    where = np.empty(len(keys), dtype=np.int64)
    where[reps] = np.arange(len(reps))
    return reps, where[rep]


def first_of_groups(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal rows (or values) of ``K`` form a group: the first row of every group, in row
    order, and each row's group (an index into the first rows)."""
    if K.ndim == 1:
        _, first, inv = np.unique(K, return_index=True, return_inverse=True)
    else:
        _, first, inv = np.unique(K, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of their first row
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[np.asarray(inv).ravel()]
