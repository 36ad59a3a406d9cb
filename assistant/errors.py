"""The project's one exception hierarchy.

Library code raises these; only `assistant/cli.py` and `ui/` turn them into messages.
Every message is written for the user and says what to do next.
"""


class AssistantError(Exception):
    """Base class: a problem the user can fix; shown as one line, never a traceback."""


class CorpusError(AssistantError):
    """The corpus folder is missing, empty, or has no usable files."""


class ModelError(AssistantError):
    """The embedding model is missing or cannot be prepared."""


class IndexMissingError(AssistantError):
    """No index has been built yet at the configured location."""


class IndexMismatchError(AssistantError):
    """The index on disk was built differently (model, format) or is damaged."""


class QuestionError(AssistantError):
    """The question cannot be answered as given (e.g. it is empty)."""


class QueryFileError(AssistantError):
    """A test-query file is malformed or names phrases that occur nowhere."""
