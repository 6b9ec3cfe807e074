"""Seeded perturbations of decisions, for the faithfulness and stability of their explanations.

Two neighbourhoods:

- **normal** (OpenXAI's ``NormalPerturbation``, ``openxai/explainers/perturbation_methods.py``):
  a continuous feature gets ``x + N(0, (std * s_j)^2)``, a binary feature is flipped with
  OpenXAI's flip probability ``sqrt(2 / pi) * std``. Departures, stated: OpenXAI adds the
  noise to min-max-scaled inputs, we scale it by each feature's training standard deviation
  ``s_j`` (int features count as continuous and are not rounded, nothing is clipped, as in
  OpenXAI); a category feature (a one-hot group inside the model) moves, with the flip
  probability, to another category drawn uniformly, as OpenXAI's one-hot-aware variant
  (``NewDiscrete_NormalPerturbation``, used for german) does, whereas its default perturbation
  flips each one-hot column on its own.
- **background**: the features are replaced by those of a row drawn uniformly from the
  explainer's background sample, the neighbourhood interventional SHAP averages over (Han,
  Srinivas and Lakkaraju, NeurIPS 2022, recommend scoring an explanation with the perturbation
  that matches its own neighbourhood).

Every row draws from its own generator, seeded by (seed, stream, decision id), so a decision's
perturbations do not depend on the chunk it falls in or on its neighbours in the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from governance.registry.schema import FeatureSchema

CONTINUOUS, BINARY, CATEGORY = "c", "b", "g"


def flip_probability(std: float) -> float:
    """OpenXAI's flip probability for binary features at noise ``std``: sqrt(2/pi) * std."""
    return float(np.sqrt(2.0 / np.pi) * std)


def row_seed(key: str, seed: int, stream: str) -> int:
    """A 64-bit seed for one row and purpose, from its id: independent of batch and order."""
    digest = hashlib.sha256(f"{seed}\x1f{stream}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def row_generators(keys: Sequence[str], seed: int, stream: str) -> list[np.random.Generator]:
    return [np.random.default_rng(row_seed(str(k), seed, stream)) for k in keys]


@dataclass(frozen=True)
class FeatureSpace:
    """How each feature of a schema is perturbed.

    Attributes
    ----------
    kinds : tuple of str
        ``"c"`` continuous (float and int), ``"b"`` binary (bool), ``"g"`` a category group.
    scale : ndarray of shape (d,)
        Training standard deviation of continuous features (0 for the others and for constant
        features, which the normal perturbation leaves alone).
    n_categories : ndarray of shape (d,), int
        Number of categories of a category feature, else 0.
    """

    kinds: tuple[str, ...]
    scale: np.ndarray
    n_categories: np.ndarray

    @classmethod
    def from_schema(cls, schema: FeatureSchema, scale: np.ndarray) -> FeatureSpace:
        """The space of ``schema`` with per-feature ``scale`` (e.g. ``feature_scale(...)``)."""
        kinds = tuple(
            CATEGORY if s.dtype == "category" else BINARY if s.dtype == "bool" else CONTINUOUS
            for s in schema
        )
        scale = np.asarray(scale, dtype=float)
        if scale.shape != (len(schema),):
            raise ValueError(f"scale has shape {scale.shape}, expected ({len(schema)},)")
        scale = np.where(np.array(kinds) == CONTINUOUS, np.nan_to_num(scale), 0.0)
        cats = np.array([len(s.categories) if s.dtype == "category" else 0 for s in schema])
        return cls(kinds, scale, cats)

    @property
    def d(self) -> int:
        return len(self.kinds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kinds": "".join(self.kinds),
            "scale": [float(v) for v in self.scale],
            "n_categories": [int(v) for v in self.n_categories],
        }

    def representation(self, X: np.ndarray) -> np.ndarray:
        """Inputs as the relative input change of RIS sees them: continuous features in units
        of their training std (not centred: OpenXAI's inputs are min-max scaled, not centred),
        binary as 0/1, a category as its one-hot indicators (OpenXAI's encoding)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        cols = []
        for j, kind in enumerate(self.kinds):
            if kind == CATEGORY:
                k = int(self.n_categories[j])
                cols.append((X[:, j, None] == np.arange(k)[None, :]).astype(float))
            elif kind == CONTINUOUS and self.scale[j] > 0:
                cols.append(X[:, j, None] / self.scale[j])
            else:
                cols.append(X[:, j, None])
        return np.hstack(cols)


def normal_perturbations(
    space: FeatureSpace,
    X: np.ndarray,
    n_samples: int,
    std: float,
    rngs: Sequence[np.random.Generator],
    flip: float | None = None,
) -> np.ndarray:
    """OpenXAI's normal perturbation of every feature of every row.

    Parameters
    ----------
    space : FeatureSpace
    X : ndarray of shape (n, d)
        Rows as code matrices (categories as integer codes).
    n_samples : int
    std : float
        Noise standard deviation in units of each continuous feature's ``space.scale``.
    rngs : sequence of Generator
        One per row (see :func:`row_generators`).
    flip : float, optional
        Flip probability of binary and category features; default OpenXAI's
        ``sqrt(2/pi) * std``.

    Returns
    -------
    ndarray of shape (n, n_samples, d)
        Fully perturbed points; a mask chooses which features take them.
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    n, d = X.shape
    p = flip_probability(std) if flip is None else float(flip)
    kinds = np.array(space.kinds)
    binary, group = kinds == BINARY, kinds == CATEGORY
    k = np.maximum(space.n_categories, 1)
    out = np.empty((n, n_samples, d))
    for i, rng in enumerate(rngs):
        z = rng.standard_normal((n_samples, d))
        u = rng.random((n_samples, d))
        v = rng.random((n_samples, d))
        row = np.broadcast_to(X[i], (n_samples, d))
        moved = u < p
        pert = row + z * (std * space.scale)
        pert = np.where(binary & moved, 1.0 - row, pert)
        # Another category, uniformly among the k - 1 others: shift the code by 1..k-1 mod k.
        shift = 1 + np.floor(v * (k - 1))
        other = np.mod(row + shift, k)
        out[i] = np.where(group & moved & (k > 1), other, np.where(group, row, pert))
    return out


def background_perturbations(
    background: np.ndarray, n: int, n_samples: int, rngs: Sequence[np.random.Generator]
) -> np.ndarray:
    """Rows of ``background`` drawn uniformly with replacement, ``n_samples`` per row.

    Returns
    -------
    ndarray of shape (n, n_samples, d)
    """
    background = np.atleast_2d(np.asarray(background, dtype=float))
    if len(background) == 0:
        raise ValueError("the background perturbation needs background rows")
    idx = np.stack([rng.integers(0, len(background), size=n_samples) for rng in rngs[:n]])
    return background[idx]


def apply_mask(X: np.ndarray, perturbed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Points that take ``perturbed`` values where ``mask`` is True and keep ``X`` elsewhere.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    perturbed : ndarray of shape (n, n_samples, d)
    mask : ndarray of shape (n, d), bool
        True for the features to perturb. (OpenXAI's ``feature_mask`` is the opposite: True
        marks the features held static.)
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    return np.where(mask[:, None, :], perturbed, X[:, None, :])
