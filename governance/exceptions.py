"""Named errors of the governance core; each message names the value and what was expected."""


class GovernanceError(Exception):
    """Base class for every error the core raises on purpose."""


class NotFound(GovernanceError, LookupError):
    """Raised when something asked for by name or id is not there: a ledger, a subject, a run."""


class UnknownModelVersion(NotFound, KeyError):
    """Raised when a model name or version is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ArtifactHashMismatch(GovernanceError, ValueError):
    """Raised when a model artifact's bytes differ from the sha256 registered in its manifest."""


class UntrustedArtifact(GovernanceError, ValueError):
    """Raised when a skops artifact holds types outside the registry's allow-list."""


class InvalidName(GovernanceError, ValueError):
    """Raised when a model name or version could escape the registry folder or is malformed."""


class ManifestError(GovernanceError, ValueError):
    """Raised when a model manifest is missing, malformed or inconsistent."""


class DecisionLogError(GovernanceError, ValueError):
    """Raised when a decision log cannot be read as a whole (missing columns, corrupt file)."""


class InputFileError(GovernanceError, ValueError):
    """Raised when a file a user named cannot be read in the format it was given as."""


class DatasetUnavailable(GovernanceError, FileNotFoundError):
    """Raised when a real data set is not present on this machine."""


class ActionSetError(GovernanceError, ValueError):
    """Raised when an action set is malformed or inconsistent with the data."""


class StoreError(GovernanceError, RuntimeError):
    """Raised when the SQL store cannot be reached or is not at the expected schema revision."""


class FragilityError(GovernanceError, ValueError):
    """Raised when a deletion-fragility search gets inputs it cannot work with."""


class CostError(GovernanceError, ValueError):
    """Raised when a recourse cost is malformed or does not match the model's features."""


class RecourseError(GovernanceError, ValueError):
    """Raised when a recourse search gets a malformed acceptance rule or result."""


class DeletionError(GovernanceError, ValueError):
    """Raised when a deletion request cannot be carried out as asked (date, salt, ids, data)."""


class RobustnessError(GovernanceError, ValueError):
    """Raised when stability scores, robust recourse, variants or calibration get bad inputs."""


class NoticeError(GovernanceError, ValueError):
    """Raised when a notice cannot be issued: missing settings, or reasons the linter refuses."""


class ScoreMismatch(GovernanceError, ValueError):
    """Raised when logged decisions are not reproduced by the registered model and the run was
    told to fail on that."""


class DeploymentError(GovernanceError, ValueError):
    """Raised when a deployment is asked for that the recorded states do not allow (no passed
    check, or a forced deployment without a reason)."""


class GateFailed(GovernanceError):
    """Raised, after the verdict is recorded, when a redeploy check finds more invalidated
    recourse than its gate allows; ``summary`` is the check's summary."""

    def __init__(self, message: str, summary: dict | None = None) -> None:
        super().__init__(message, summary)
        self.summary = summary or {}

    def __str__(self) -> str:
        return str(self.args[0])


class MissingTrainingData(ManifestError):
    """Raised when a check needs the rows a version was trained on and the version has none."""


class ImportRefused(ManifestError):
    """Raised when a fitted model cannot be imported as it is (unscorable, unsafe, unmatched)."""


class ExplanationQualityError(GovernanceError, ValueError):
    """Explanation-quality settings that cannot be used (a sample size, an explainer kind)."""


class RunInProgress(GovernanceError, RuntimeError):
    """Raised when another process holds the lock of the same run (same kind and night)."""
