"""Settings, declared once: every field has a default, help text, an environment variable and the
values it allows (type, choices or range).

One `Settings` object is built (by the CLI or the UI) and passed explicitly to whatever needs it.
Every value is checked when the object is made, so a bad setting stops the program at the start with
one line naming the variable, the bad value and what is allowed, never later or silently.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import SettingsError
from corpus.options import MAX_FILE_MB
from index.options import BuildOptions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODES = ("hybrid", "dense", "bm25")
FUSIONS = ("learned", "weighted", "rrf")
MAX_PASSAGES = 50  # the most passages one answer may ask for (k)


def _setting(default, help: str, env: str, *, low=None, high=None, choices=None, secret=False):
    """A field with its help text, environment variable and allowed values (`low`..`high` or `choices`)."""
    metadata = {"help": help, "env": env, "low": low, "high": high, "choices": choices}
    return field(default=default, metadata=metadata, repr=not secret)


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = _setting(
        PROJECT_ROOT / "corpus" / "articles", "Folder of .txt/.md/.html/.pdf/.docx articles.", "ASSISTANT_CORPUS"
    )
    index_dir: Path = _setting(PROJECT_ROOT / "var" / "index", "Folder holding the built index.", "ASSISTANT_INDEX")
    model: str = _setting(
        str(PROJECT_ROOT / "var" / "models" / "multilingual-e5-small"),
        "Sentence-transformers model folder (written by `assistant model prepare`).",
        "ASSISTANT_MODEL",
    )
    chunk_tokens: int = _setting(
        220, "Largest chunk, in model tokens (sentences are never cut).", "ASSISTANT_CHUNK_TOKENS", low=16, high=512
    )
    chunk_overlap: int = _setting(
        0, "Sentences repeated from the previous chunk.", "ASSISTANT_CHUNK_OVERLAP", low=0, high=10
    )
    context_words: int = _setting(
        60,
        "Words of the article's lead (after its title) keyword-indexed with every chunk; 0: chunk text only.",
        "ASSISTANT_CONTEXT_WORDS",
        low=0,
        high=400,
    )
    batch_size: int = _setting(16, "Sentence windows embedded per batch.", "ASSISTANT_BATCH_SIZE", low=1, high=1024)
    mode: str = _setting("hybrid", "Retrieval mode.", "ASSISTANT_MODE", choices=MODES)
    fusion: str = _setting(
        "learned",
        "How hybrid fuses rankings: learned (weighted, then its first chunks re-scored), weighted or rrf.",
        "ASSISTANT_FUSION",
        choices=FUSIONS,
    )
    rrf_k: int = _setting(60, "Reciprocal-rank-fusion constant.", "ASSISTANT_RRF_K", low=1, high=1000)
    dense_weight: float = _setting(
        0.4,
        "Weight of the dense scores in weighted fusion (learned fusion's first step).",
        "ASSISTANT_DENSE_WEIGHT",
        low=0.0,
        high=1.0,
    )
    candidates: int = _setting(
        100, "Candidates each retriever hands to fusion.", "ASSISTANT_CANDIDATES", low=1, high=10_000
    )
    no_answer_threshold: float = _setting(
        -1.0,
        "Below this calibrated confidence (0-1) of the best passage, answer 'nothing relevant'; "
        "-1: the threshold shipped with the calibration (assistant/calibration.json).",
        "ASSISTANT_NO_ANSWER",
        low=-1.0,
        high=1.0,
    )
    max_question_chars: int = _setting(
        1000, "Longer questions are truncated to this.", "ASSISTANT_MAX_QUESTION", low=10, high=100_000
    )
    feedback_file: Path = _setting(
        PROJECT_ROOT / "var" / "feedback.jsonl", "Where thumbs up/down are appended.", "ASSISTANT_FEEDBACK"
    )
    feedback_max_bytes: int = _setting(
        5_000_000,
        "The feedback file stops growing at this size (about 1 KB per verdict).",
        "ASSISTANT_FEEDBACK_MAX_BYTES",
        low=10_000,
        high=10_000_000_000,
    )
    max_file_mb: float = _setting(
        MAX_FILE_MB,
        "Corpus files larger than this many MB are skipped with a reason (0: no limit).",
        "ASSISTANT_MAX_FILE_MB",
        low=0,
        high=100_000,
    )
    max_upload_mb: float = _setting(
        5.0,
        "Largest file the web page accepts for adding to the corpus, in MB.",
        "ASSISTANT_MAX_UPLOAD_MB",
        low=0.001,
        high=1000,
    )
    hnsw_threshold: int = _setting(
        50_000,
        "From this many vectors on (sentence windows, ~3 per chunk), the folder index is HNSW, not exact.",
        "ASSISTANT_HNSW_THRESHOLD",
        low=1,
        high=1_000_000_000,
    )
    auth: str = _setting("", "Login for the web UI as user:password; empty: no login.", "ASSISTANT_AUTH", secret=True)
    store: str = _setting(
        "",
        "Where the index lives: empty for the folder ASSISTANT_INDEX, or a PostgreSQL database with the vector "
        "extension as postgresql://user:password@host:port/database.",
        "ASSISTANT_STORE",
        secret=True,
    )
    ef_search: int = _setting(
        200,
        "PostgreSQL store: HNSW candidates examined per search (higher: closer to exact, slower).",
        "ASSISTANT_EF_SEARCH",
        low=1,
        high=1000,
    )
    embed_workers: int = _setting(
        1,
        "PostgreSQL store: processes embedding a build's chunks (this one and N-1 `assistant index worker`; "
        "workers on other machines may join).",
        "ASSISTANT_WORKERS",
        low=1,
        high=64,
    )

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _checked(f, getattr(self, f.name)))

    def build_options(self) -> BuildOptions:
        """The slice of the settings an index build needs."""
        return BuildOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(BuildOptions)})

    def index_store(self):
        """The store the index lives in: the database named by `store`, else the folder `index_dir`."""
        from index.stores import open_store

        return open_store(self.store, self.index_dir, self.ef_search)

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) from `auth`, or None when the UI needs no login."""
        return tuple(self.auth.split(":", 1)) if self.auth else None

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Defaults, then environment variables, then explicit (non-None) overrides; all checked. An index
        folder named explicitly beats ASSISTANT_STORE from the environment (the store wins otherwise, and
        `eval --corpus --index DIR` rebuilt the team's database from a benchmark's corpus); naming both is refused."""
        values = {}
        for f in dataclasses.fields(cls):
            raw = os.environ.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = raw
        given = {k: v for k, v in overrides.items() if v is not None}
        if "index_dir" in given and given.get("store"):
            raise SettingsError("--index and --store name two different indexes: give one of them.")
        if "index_dir" in given:
            values["store"] = ""
        values.update(given)
        return cls(**values)


def option_help(name: str) -> str:
    """Help for a command-line option that overrides setting `name`: the setting's own text and variable."""
    f = next(f for f in dataclasses.fields(Settings) if f.name == name)
    values = "" if _kind(f) in (Path, str) and not f.metadata["choices"] else f"; {allowed(f)}"
    return f"{f.metadata['help']} [env {f.metadata['env']}{values}]"


def allowed(f: dataclasses.Field) -> str:
    """What a field accepts, in words (used in error messages and help)."""
    meta, kind = f.metadata, _kind(f)
    if meta["choices"]:
        return "one of " + ", ".join(meta["choices"])
    if f.name == "auth":
        return "user:password (both non-empty), or empty for no login"
    if f.name == "store":
        return "a postgresql:// URL, or empty for the index folder"
    if kind in (int, float):
        number = "a whole number" if kind is int else "a number"
        low, high = (_number(x) if x is not None else None for x in (meta["low"], meta["high"]))
        return number + (f" from {low}" if low else "") + (f" to {high}" if high else "")
    return "a folder or file path" if kind is Path else "a non-empty text"


def _number(x) -> str:
    return f"{x:,}".replace(",", " ") if abs(x) >= 10_000 else str(x)


def _kind(f: dataclasses.Field) -> type:
    return Path if isinstance(f.default, Path) else type(f.default)


def _checked(f: dataclasses.Field, value):
    """`value` converted to the field's type and checked; a SettingsError says what is allowed."""
    kind, meta, raw = _kind(f), f.metadata, value
    try:
        if isinstance(value, bool) or (isinstance(value, str) and not value.strip() and f.default != ""):
            raise ValueError("empty")
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError("not whole")
        value = kind(value.strip() if isinstance(value, str) and kind in (int, float) else value)
    except (TypeError, ValueError):
        raise _bad(f, value) from None
    low, high = (
        meta["low"] if meta["low"] is not None else -math.inf,
        meta["high"] if meta["high"] is not None else math.inf,
    )
    if kind in (int, float) and not (math.isfinite(value) and low <= value <= high):
        raise _bad(f, raw)
    if meta["choices"] and value not in meta["choices"]:
        raise _bad(f, raw)
    if f.name == "auth" and value and not all(value.partition(":")[::2]):
        raise SettingsError(f"{meta['env']} must be {allowed(f)}; got a value without that form.")
    if f.name == "store" and value and not value.startswith(("postgresql://", "postgres://")):
        raise SettingsError(f"{meta['env']} must be {allowed(f)}; got a value without that form.")
    return value


def _bad(f: dataclasses.Field, value) -> SettingsError:
    shown = repr(value if isinstance(value, str) else str(value))
    return SettingsError(f"{f.metadata['env']}={shown[:60]} is not allowed: use {allowed(f)} — {f.metadata['help']}")
