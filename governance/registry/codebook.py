"""Words for a model version's inputs: display names of features, labels of category codes.

Models are often trained on coded data (the German credit data's checking account is A11 to
A14), and reasons, recourse and notices would show those codes to a reviewer or an applicant.
A codebook maps them to words; it changes what is displayed, never what is computed, so it
lives beside the version (``codebook.json`` in its registry folder) and may be attached or
corrected after registration without touching the artifact or its manifest.

Every command and page that shows a feature or a value goes through :meth:`Codebook.feature`
and :meth:`Codebook.show_value`; a version without a codebook shows names and codes as they are.

Examples
--------
>>> book = Codebook({"checking_account_status": "Checking account"},
...                 {"checking_account_status": {"A11": "< 0 DM"}})
>>> book.feature("checking_account_status"), book.show_value("checking_account_status", "A11")
('Checking account', '< 0 DM (A11)')
>>> book.feature("age"), book.show_value("age", 42)
('age', '42')
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.exceptions import ManifestError
from governance.fileio import atomic_write_json

CODEBOOK = "codebook.json"
FORMAT = "governance.codebook/1"


@dataclass(frozen=True)
class Codebook:
    """Display names of features and labels of category codes.

    Parameters
    ----------
    features : mapping of str to str
        Feature name -> display name (e.g. ``"dti"`` -> ``"Debt-to-income ratio"``).
    values : mapping of str to mapping of str to str
        Feature name -> code -> label (e.g. ``"housing"`` -> ``{"A151": "rent"}``).
    """

    features: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.features or self.values)

    def feature(self, name: str) -> str:
        """The display name of ``name`` (the name itself when the codebook has none)."""
        return self.features.get(name) or name

    def value_label(self, feature: str, value: Any) -> str | None:
        """The label of a category code, or None when the codebook has none for it."""
        labels = self.values.get(feature)
        return None if not labels or value is None else labels.get(_code(value))

    def show_value(self, feature: str, value: Any) -> str:
        """A value as a reviewer reads it: ``"label (code)"`` for a labelled code, else as is."""
        label = self.value_label(feature, value)
        return str(value) if label is None else f"{label} ({_code(value)})"

    def check(self, names: Iterable[str]) -> Codebook:
        """Refuse a codebook naming features the model does not have (a typo or another model's
        codebook); returns it unchanged."""
        known = set(names)
        unknown = sorted((set(self.features) | set(self.values)) - known)
        if unknown:
            raise ManifestError(
                f"codebook names feature(s) the model does not have: {', '.join(unknown)}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "features": dict(self.features),
            "values": {k: dict(v) for k, v in self.values.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Codebook:
        if not isinstance(data, Mapping) or data.get("format", FORMAT) != FORMAT:
            raise ManifestError(f"a codebook must be a JSON object with format {FORMAT!r}")
        features, values = data.get("features") or {}, data.get("values") or {}
        if not isinstance(features, Mapping) or not isinstance(values, Mapping) or not all(
            isinstance(v, Mapping) for v in values.values()
        ):
            raise ManifestError(
                "a codebook holds 'features' (name -> display name) and 'values' "
                "(name -> code -> label)"
            )
        return cls(
            {str(k): str(v) for k, v in features.items()},
            {str(f): {_code(c): str(t) for c, t in m.items()} for f, m in values.items()},
        )


def _code(value: Any) -> str:
    """Codes are compared as text: 1, 1.0 and "1" are one code."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def read_codebook(path: str | Path) -> Codebook:
    """Read a codebook from JSON (the format of :meth:`Codebook.to_dict`) or CSV.

    A CSV has the columns ``column,code,meaning`` (the German credit data's
    ``german_codebook.csv``); a row with an empty code gives the feature's display name.

    Raises
    ------
    ManifestError
        If the file cannot be read or has neither form.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            if rows and not {"column", "code", "meaning"} <= set(rows[0]):
                raise ManifestError(f"codebook {path} needs the columns column, code, meaning")
            features: dict[str, str] = {}
            values: dict[str, dict[str, str]] = {}
            for r in rows:
                if r["code"]:
                    values.setdefault(r["column"], {})[r["code"]] = _clean(r["meaning"])
                else:
                    features[r["column"]] = r["meaning"].strip()
            return Codebook(features, values)
        return Codebook.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(f"cannot read codebook {path}: {exc}") from exc


def _clean(text: str) -> str:
    """'... < 0 DM' (german.doc's placeholder for the value) -> '< 0 DM'; 'if not A121 :'
    prefixes dropped."""
    text = re.sub(r"^\.+\s*", "", text.strip())
    text = re.sub(r"^if not [A0-9/]+\s*:\s*", "", text)
    return " ".join(text.split())


def _folder(registry: Any, name: str, version: str) -> Path:
    """The version's folder; ``registry`` is a ModelRegistry or its root folder."""
    from governance.registry.model_registry import ModelRegistry

    reg = registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry)
    return reg.path(name, version)


def load_codebook(registry: Any, name: str, version: str) -> Codebook:
    """The codebook of ``name`` ``version`` (an empty one when it has none).

    ``registry`` is a :class:`~governance.registry.model_registry.ModelRegistry` or its folder.
    """
    path = _folder(registry, name, version) / CODEBOOK
    if not path.exists():
        return Codebook()
    return read_codebook(path)


def save_codebook(registry: Any, name: str, version: str, codebook: Codebook) -> Path:
    """Attach ``codebook`` to a registered version (replacing any earlier one).

    Raises
    ------
    UnknownModelVersion
        If the version is not registered.
    ManifestError
        If the codebook names features the version does not have.
    """
    from governance.registry.model_registry import ModelRegistry

    reg = registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry)
    codebook.check(reg.manifest(name, version).schema.names)
    path = reg.path(name, version) / CODEBOOK
    atomic_write_json(path, codebook.to_dict())
    return path
