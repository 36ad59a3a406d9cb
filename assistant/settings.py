"""Settings, declared once: every field has a default, help text and an environment variable.

One `Settings` object is built (by the CLI or the UI) and passed explicitly to whatever needs it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from corpus.options import MAX_FILE_MB
from index.options import BuildOptions

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _setting(default, help: str, env: str):
    return field(default=default, metadata={"help": help, "env": env})


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = _setting(
        PROJECT_ROOT / "corpus" / "articles", "Folder of .txt/.md/.html articles.", "ASSISTANT_CORPUS"
    )
    index_dir: Path = _setting(PROJECT_ROOT / "var" / "index", "Folder holding the built index.", "ASSISTANT_INDEX")
    model: str = _setting(
        str(PROJECT_ROOT / "var" / "models" / "multilingual-e5-small"),
        "Sentence-transformers model folder (or hub id on a machine with internet).",
        "ASSISTANT_MODEL",
    )
    chunk_tokens: int = _setting(
        220, "Largest chunk, in model tokens (sentences are never cut).", "ASSISTANT_CHUNK_TOKENS"
    )
    chunk_overlap: int = _setting(0, "Sentences repeated from the previous chunk.", "ASSISTANT_CHUNK_OVERLAP")
    context_words: int = _setting(
        60,
        "Words of the article's lead (after its title) indexed with every chunk; 0: chunk text only.",
        "ASSISTANT_CONTEXT_WORDS",
    )
    batch_size: int = _setting(16, "Chunks embedded per batch.", "ASSISTANT_BATCH_SIZE")
    mode: str = _setting("hybrid", "Retrieval mode: hybrid, dense or bm25.", "ASSISTANT_MODE")
    fusion: str = _setting("weighted", "How hybrid fuses rankings: weighted or rrf.", "ASSISTANT_FUSION")
    rrf_k: int = _setting(60, "Reciprocal-rank-fusion constant.", "ASSISTANT_RRF_K")
    dense_weight: float = _setting(0.7, "Weight of the dense scores in weighted fusion.", "ASSISTANT_DENSE_WEIGHT")
    candidates: int = _setting(100, "Candidates each retriever hands to fusion.", "ASSISTANT_CANDIDATES")
    no_answer_threshold: float = _setting(
        0.80, "Below this cosine for the best passage, answer 'nothing relevant'.", "ASSISTANT_NO_ANSWER"
    )
    max_question_chars: int = _setting(1000, "Longer questions are truncated to this.", "ASSISTANT_MAX_QUESTION")
    feedback_file: Path = _setting(
        PROJECT_ROOT / "var" / "feedback.jsonl", "Where thumbs up/down are appended.", "ASSISTANT_FEEDBACK"
    )
    hnsw_threshold: int = _setting(
        50_000, "From this many chunks on, the index is HNSW instead of exact search.", "ASSISTANT_HNSW_THRESHOLD"
    )
    max_file_mb: float = _setting(
        MAX_FILE_MB,
        "Corpus files larger than this many MB are skipped with a reason (0: no limit).",
        "ASSISTANT_MAX_FILE_MB",
    )

    def build_options(self) -> BuildOptions:
        """The slice of the settings an index build needs."""
        return BuildOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(BuildOptions)})

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Defaults, then environment variables, then explicit (non-None) overrides."""
        values = {}
        for f in dataclasses.fields(cls):
            raw = os.environ.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = _parse(f.default, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("corpus_dir", "index_dir", "feedback_file"):
            if key in values:
                values[key] = Path(values[key])
        return cls(**values)


def _parse(default, raw: str):
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, (int, float)):
        return type(default)(raw)
    return raw
