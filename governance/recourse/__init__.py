"""Recourse: what an applicant can change (action sets), what that reaches, whether acting on a
reason can help (responsiveness), whether the denial is fixed, and the minimal-cost action."""

from governance.recourse.action_set import BUNDLED, JSON_SCHEMA, ActionElement, ActionSet
from governance.recourse.constraints import LinearConstraint
from governance.recourse.costs import (
    Cost,
    MADL1Cost,
    PercentileShiftCost,
    cost_from_dict,
    cost_unit,
    load_cost,
)
from governance.recourse.drafting import (
    ActionSetCheck,
    check_action_set,
    draft_action_set,
    read_action_set,
    schema_errors,
)
from governance.recourse.reachable import (
    CompiledActionSet,
    Part,
    ReachableSet,
    compile_action_set,
    is_reachable,
    reachable_set,
)
from governance.recourse.scoring import ResponsivenessResult, responsiveness
from governance.recourse.search import (
    MAX_POINTS,
    PROVE_POINTS,
    STATUSES,
    RecourseResult,
    find_recourse,
)

__all__ = [
    "BUNDLED",
    "JSON_SCHEMA",
    "MAX_POINTS",
    "PROVE_POINTS",
    "STATUSES",
    "check_action_set",
    "compile_action_set",
    "cost_from_dict",
    "cost_unit",
    "draft_action_set",
    "find_recourse",
    "is_reachable",
    "load_cost",
    "reachable_set",
    "read_action_set",
    "responsiveness",
    "schema_errors",
    "ActionElement",
    "ActionSet",
    "ActionSetCheck",
    "CompiledActionSet",
    "Cost",
    "LinearConstraint",
    "MADL1Cost",
    "Part",
    "PercentileShiftCost",
    "ReachableSet",
    "RecourseResult",
    "ResponsivenessResult",
]
