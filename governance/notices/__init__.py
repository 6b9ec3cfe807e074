"""Notices to applicants: the reason linter, the notice's contents, and the lender's settings.

Credit adverse-action notices (Regulation B 1002.9 and its Appendix C forms) come first; a
GDPR Art. 22 / Art. 15(1)(h) letter about an automated decision is built from the same
reviewed reason statements. Rendering to HTML, text and PDF happens in the CLI layer.
"""

from governance.notices.content import (
    ECOA_NOTICE,
    NoticeContent,
    describe_change,
    notice_content,
)
from governance.notices.lint import (
    DIRECTIONS,
    MAX_REASONS,
    LintResult,
    ReasonLine,
    direction_of,
    lint_reasons,
)
from governance.notices.settings import (
    GENERIC_PHRASES,
    PROTECTED_TERMS,
    NoticeSettings,
    Party,
    load_settings,
    settings_path,
)

__all__ = [
    "DIRECTIONS",
    "ECOA_NOTICE",
    "GENERIC_PHRASES",
    "MAX_REASONS",
    "PROTECTED_TERMS",
    "LintResult",
    "NoticeContent",
    "NoticeSettings",
    "Party",
    "ReasonLine",
    "describe_change",
    "direction_of",
    "lint_reasons",
    "load_settings",
    "notice_content",
    "settings_path",
]
