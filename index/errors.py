"""The index stage's errors (model, build, stored index)."""

from corpus.errors import AssistantError


class ModelError(AssistantError):
    """The embedding model is missing or cannot be prepared."""


class BuildError(AssistantError):
    """An index build cannot run or finish (location unusable, disk full, another build running)."""


class IndexMissingError(AssistantError):
    """No index has been built yet at the configured location."""


class IndexMismatchError(AssistantError):
    """The index on disk was built differently (model, format) or is damaged."""
