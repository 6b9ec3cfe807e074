"""Decision-log intake: where a night's automated decisions come from, and their validation.

Logs are read from date-partitioned Parquet or a SQL table; rows that fail a check are
quarantined with the reason, never dropped.
"""

from governance.intake.decision_log import (
    META_COLUMNS,
    DecisionSource,
    ParquetDecisionLog,
    SqlDecisionLog,
    make_decisions,
    night_bounds,
    read_model_night,
    read_night,
    source_for,
)
from governance.intake.validation import (
    QUARANTINE_COLUMNS,
    ModelContract,
    ValidationResult,
    check_night_structure,
    contracts_for,
    validate_night,
)

__all__ = [
    "META_COLUMNS",
    "QUARANTINE_COLUMNS",
    "check_night_structure",
    "contracts_for",
    "make_decisions",
    "night_bounds",
    "read_model_night",
    "read_night",
    "source_for",
    "validate_night",
    "DecisionSource",
    "ModelContract",
    "ParquetDecisionLog",
    "SqlDecisionLog",
    "ValidationResult",
]
