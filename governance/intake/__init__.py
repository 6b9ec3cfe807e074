"""Decision-log intake: where a night's automated decisions come from, and their validation.

Logs are read from date-partitioned Parquet or a SQL table; rows that fail a check are
quarantined with the reason, never dropped.
"""

from governance.intake.decision_log import (
    META_COLUMNS,
    SCORE_TOLERANCE,
    DecisionSource,
    ParquetDecisionLog,
    SqlDecisionLog,
    make_decisions,
    night_bounds,
    read_night,
    score_reproduced,
)
from governance.intake.validation import (
    QUARANTINE_COLUMNS,
    ModelContract,
    ValidationResult,
    validate_night,
)

__all__ = [
    "META_COLUMNS",
    "QUARANTINE_COLUMNS",
    "SCORE_TOLERANCE",
    "make_decisions",
    "night_bounds",
    "read_night",
    "score_reproduced",
    "validate_night",
    "DecisionSource",
    "ModelContract",
    "ParquetDecisionLog",
    "SqlDecisionLog",
    "ValidationResult",
]
