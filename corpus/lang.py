"""Language detection restricted to the languages the corpus is written in."""

from __future__ import annotations

from functools import lru_cache

LANGUAGES = {"SWEDISH": "sv", "DANISH": "da", "ENGLISH": "en", "BOKMAL": "nb"}


@lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(*(getattr(Language, name) for name in LANGUAGES)).build()


def detect_language(text: str, default: str = "sv") -> str:
    """ISO 639-1 code of `text` (sv, da, en or nb); `default` when undecidable."""
    found = _detector().detect_language_of(text[:5000])
    return LANGUAGES.get(found.name, default) if found else default
