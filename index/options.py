"""What an index build needs to know: the index stage's own options, a slice of the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpus.options import MAX_FILE_MB


@dataclass(frozen=True)
class BuildOptions:
    corpus_dir: Path
    index_dir: Path
    model: str  # model folder; recorded in the manifest
    chunk_tokens: int = 220
    chunk_overlap: int = 0
    context_words: int = 60
    batch_size: int = 16
    hnsw_threshold: int = 50_000
    max_file_mb: float = MAX_FILE_MB
