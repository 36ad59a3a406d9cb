"""The assistant stage's errors; re-exports the lower stages' so callers need one import.

Library code raises these; only `assistant/cli.py` and `ui/` turn them into messages.
"""

from corpus.errors import AssistantError, CorpusError
from index.errors import BuildError, IndexMismatchError, IndexMissingError, ModelError

__all__ = [
    "AssistantError",
    "BuildError",
    "CalibrationError",
    "CorpusError",
    "IndexMismatchError",
    "IndexMissingError",
    "ModelError",
    "QueryFileError",
    "QuestionError",
    "SettingsError",
]


class CalibrationError(AssistantError):
    """The shipped confidence calibration (assistant/calibration.json) is missing or damaged."""


class QuestionError(AssistantError):
    """The question cannot be answered as given (e.g. it is empty)."""


class QueryFileError(AssistantError):
    """A test-query file is malformed or names phrases that occur nowhere."""


class SettingsError(AssistantError):
    """A setting (environment variable or option) has a value that cannot be used."""
