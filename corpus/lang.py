"""Language detection restricted to the languages the corpus is written in."""

from __future__ import annotations

from functools import lru_cache

LANGUAGES = {"SWEDISH": "sv", "DANISH": "da", "ENGLISH": "en", "BOKMAL": "nb"}


@lru_cache(maxsize=2)
def _detector(fast: bool = False):
    from lingua import Language, LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_languages(*(getattr(Language, name) for name in LANGUAGES))
    return (builder.with_low_accuracy_mode() if fast else builder).build()


def detect_language(text: str, default: str = "sv") -> str:
    """ISO 639-1 code of `text` (sv, da, en or nb); `default` when undecidable."""
    found = _detector().detect_language_of(text[:5000])
    return LANGUAGES.get(found.name, default) if found else default


def question_language(text: str) -> str:
    """The language of a question (sv, da, en or nb), or "" when undecidable: lingua's low-accuracy mode,
    0.02 ms instead of 5 ms per question, and on the tuning questions as good a cue for the calibrated
    confidence (out-of-scope refused, tuning parts: ours 0.39 vs 0.35, SweQUAD 0.48 both)."""
    found = _detector(fast=True).detect_language_of(text)
    return LANGUAGES.get(found.name, "") if found else ""
