"""Decision-log intake: where a night's automated decisions come from, and their validation.

Logs are read from Parquet or CSV files (one file, or a folder partitioned by date) or a SQL
table, with the log's own column names mapped to ours; rows that fail a check are quarantined
with the reason, never dropped, and values beyond the observed training range are flagged.
"""

from governance.intake.decision_log import (
    FORMATS,
    META_COLUMNS,
    SCORE_TOLERANCE,
    DecisionSource,
    FileDecisionLog,
    ParquetDecisionLog,
    SqlDecisionLog,
    format_of,
    make_decisions,
    night_bounds,
    open_source,
    parse_columns,
    read_model_night,
    read_night,
    score_reproduced,
    source_for,
)
from governance.intake.log_check import NightCheck, check_log
from governance.intake.validation import (
    OUT_OF_RANGE,
    QUARANTINE_COLUMNS,
    ModelContract,
    ValidationResult,
    check_night_structure,
    contracts_for,
    validate_night,
)

__all__ = [
    "FORMATS",
    "META_COLUMNS",
    "OUT_OF_RANGE",
    "QUARANTINE_COLUMNS",
    "SCORE_TOLERANCE",
    "format_of",
    "check_log",
    "check_night_structure",
    "contracts_for",
    "make_decisions",
    "night_bounds",
    "open_source",
    "parse_columns",
    "read_model_night",
    "read_night",
    "score_reproduced",
    "source_for",
    "validate_night",
    "DecisionSource",
    "FileDecisionLog",
    "ModelContract",
    "NightCheck",
    "ParquetDecisionLog",
    "SqlDecisionLog",
    "ValidationResult",
]
