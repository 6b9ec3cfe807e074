"""Directional linkage: an action on a source feature forces scaled changes on target features."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from governance.exceptions import ActionSetError
from governance.recourse.constraints.abstract import (
    Constraint,
    check_keys,
    check_names_exist,
    get_field,
)


class DirectionalLinkage(Constraint):
    """A change on ``names[0]`` (the source) moves every target ``names[k]`` by a fixed ratio.

    Semantics follow reachml's ``DirectionalLinkage``: if the source's own action is ``a_s``,
    target ``k`` changes by its own action plus ``(scales[k] / scales[0]) * a_s``. The effect
    is not transitive (a target's induced change does not propagate along its own links).
    Targets may be immutable: one more year employed is one more year of age. With
    ``keep_bounds=False`` (default) a target's bounds are widened by the induced change, so the
    target may leave ``[lb, ub]`` through the link; with ``keep_bounds=True`` its total change
    must stay within its own action bounds. The source must be actionable, scales non-zero,
    and links may not form a cycle.

    Parameters
    ----------
    names : sequence of str
        ``[source, target_1, ...]``.
    scales : sequence of float or None, default=None
        One per name; None means all 1.
    keep_bounds : bool, default=False
    note : str, default=""

    Examples
    --------
    >>> print(DirectionalLinkage(["employment_years", "age"]))
    Each unit change in `employment_years` changes `age` by 1 unit.
    """

    kind = "directional_linkage"

    def __init__(
        self,
        names: Sequence[str],
        scales: Sequence[float] | None = None,
        keep_bounds: bool = False,
        note: str = "",
    ) -> None:
        super().__init__(names, note)
        raw = np.ones(len(self.names)) if scales is None else np.asarray(scales, dtype=float)
        if raw.ndim != 1 or len(raw) != len(self.names):
            raise ActionSetError(
                f"directional_linkage needs one scale per name ({len(self.names)}); "
                f"got {list(np.atleast_1d(raw))}"
            )
        if not np.all(np.isfinite(raw)) or np.any(raw == 0):
            raise ActionSetError(
                f"directional_linkage scales must be finite and non-zero; got {raw.tolist()}"
            )
        self._raw_scales = tuple(float(s) for s in raw)
        self.keep_bounds = bool(keep_bounds)

    @property
    def source(self) -> str:
        return self.names[0]

    @property
    def targets(self) -> tuple[str, ...]:
        return self.names[1:]

    @property
    def scales(self) -> np.ndarray:
        """Change of each target per unit of source action, ``scales[k] / scales[0]``."""
        return np.asarray(self._raw_scales[1:]) / self._raw_scales[0]

    def _params(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "scales": list(self._raw_scales),
            "keep_bounds": self.keep_bounds,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DirectionalLinkage:
        check_keys(d, {"names", "scales", "keep_bounds"}, cls.kind)
        return cls(
            get_field(d, "names", cls.kind),
            scales=d.get("scales"),
            keep_bounds=d.get("keep_bounds", False),
            note=d.get("note", ""),
        )

    def check_compatibility(self, action_set) -> None:
        check_names_exist(self, action_set)
        src = action_set[self.source]
        if not src.actionable:
            raise ActionSetError(
                f"directional_linkage source {self.source!r} must be actionable"
            )
        for name in self.names:
            if action_set[name].type == "category":
                raise ActionSetError(
                    f"directional_linkage cannot link category feature {name!r}; "
                    f"expected bool, int or float"
                )
        for name, scale in zip(self.targets, self.scales, strict=True):
            el = action_set[name]
            if el.discrete:
                ratio = scale / el.grid_step
                if not np.isclose(ratio, np.round(ratio)):
                    raise ActionSetError(
                        f"directional_linkage scale {scale:g} for {el.type} target {name!r} is "
                        f"not a multiple of its step_size {el.grid_step:g}"
                    )

    def check_rows(self, V: np.ndarray) -> np.ndarray:
        return np.all(np.isfinite(np.asarray(V, dtype=float)), axis=1)

    def feasible(self, x, a, c, a_lb, a_ub) -> np.ndarray:
        # the induced changes and the widened bounds are applied by governance.reachable
        return np.ones(len(c), dtype=bool)

    def __str__(self) -> str:
        effects = ", ".join(
            f"`{t}` by {s:g} unit{'s' if abs(s) != 1 else ''}"
            for t, s in zip(self.targets, self.scales, strict=True)
        )
        s = f"Each unit change in `{self.source}` changes {effects}"
        if self.keep_bounds:
            return f"{s}; the targets must stay within their own bounds."
        return f"{s}."


def check_linkage_cycles(constraints: Iterable[Constraint]) -> None:
    """Raise :class:`ActionSetError` if directional linkages form a cycle (a -> b -> ... -> a)."""
    edges: dict[str, set[str]] = {}
    for con in constraints:
        if isinstance(con, DirectionalLinkage):
            edges.setdefault(con.source, set()).update(con.targets)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
                raise ActionSetError(f"circular linkage: {' -> '.join(cycle)}")
            if state.get(nxt) is None:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
