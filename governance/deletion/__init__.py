"""Deletion requests (GDPR Art. 17): due dates and tombstones, retraining without a subject,
the purge and the scan that proves it, and how few deletions could break issued recourse."""

from governance.deletion.fragility_search import FragilityResult, fragility
from governance.deletion.influence import Influence, supports_influence
from governance.deletion.purge import (
    ErasurePlan,
    ErasureRecord,
    FileErasure,
    ForeignTrainingFile,
    carry_over,
    execute_erasure,
    external_log_notice,
    external_training_notice,
    plan_decision_logs,
    plan_erasure,
    plan_training_files,
    purge_decision_logs,
    purge_training_files,
    subject_decision_ids,
    summarise_files,
)
from governance.deletion.requests import (
    DUE_DAYS,
    due_date,
    load_or_create_salt,
    read_salt,
    subject_hash,
)
from governance.deletion.retrain import (
    CandidateVersion,
    next_candidate_version,
    read_retrain_note,
    recourse_validity,
    refit_control,
    retrain_without,
)
from governance.deletion.scan import contains_needle, scan_for_subject, subject_needles
from governance.deletion.shared_screen import agreement, exhaustive_greedy, screen

__all__ = [
    "DUE_DAYS",
    "agreement",
    "carry_over",
    "contains_needle",
    "due_date",
    "exhaustive_greedy",
    "execute_erasure",
    "external_log_notice",
    "external_training_notice",
    "fragility",
    "load_or_create_salt",
    "next_candidate_version",
    "plan_decision_logs",
    "plan_erasure",
    "plan_training_files",
    "purge_decision_logs",
    "purge_training_files",
    "read_retrain_note",
    "read_salt",
    "recourse_validity",
    "refit_control",
    "retrain_without",
    "scan_for_subject",
    "screen",
    "subject_decision_ids",
    "subject_hash",
    "subject_needles",
    "summarise_files",
    "supports_influence",
    "CandidateVersion",
    "ErasurePlan",
    "ErasureRecord",
    "FileErasure",
    "ForeignTrainingFile",
    "FragilityResult",
    "Influence",
]
