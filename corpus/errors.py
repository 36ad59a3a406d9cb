"""The base of every error the project raises for the user, and the corpus stage's own errors.

The base lives here, in the lowest stage, so that `index/` and `assistant/` can derive from it
without any stage importing a higher one. The CLI and the UI catch `AssistantError` and show its
message as one line; every message says what to do next.
"""


class AssistantError(Exception):
    """Base class: a problem the user can fix; shown as one line, never a traceback."""


class CorpusError(AssistantError):
    """The corpus folder is missing, empty, or has no usable files."""
