"""Where an index lives: the `Store` protocol and its choice (one file per backend).

FolderStore   the default: a folder of files beside the program (index/store.py, index/build.py)
PgStore       a PostgreSQL database with the vector extension (index/pgstore.py), for several servers

Everything above reads the `StoredIndex` a store loads, so it never knows which store runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from index.manifest import Manifest, read_manifest
from index.options import BuildOptions
from index.store import StoredIndex, load_index


class Store(Protocol):
    label: str  # named in messages (a database URL without its password)

    def load(self, model_fingerprint: str | None = None) -> StoredIndex:
        """The current index; IndexMissingError / IndexMismatchError when there is none or it is unusable."""

    def build(self, options: BuildOptions, embedder, say=print, progress: bool = True):
        """Build the index from `options.corpus_dir` (re-embedding only changed windows), switch to it
        atomically and return the BuildReport; BuildError when another build is running."""

    def manifest(self) -> Manifest:
        """The manifest of the current index."""

    def exists(self) -> bool:
        """True when the store holds an index."""


@dataclass(frozen=True)
class FolderStore:
    index_dir: Path

    @property
    def label(self) -> str:
        return str(self.index_dir)

    def load(self, model_fingerprint: str | None = None) -> StoredIndex:
        """The folder index (see index/store.py: load_index)."""
        return load_index(self.index_dir, model_fingerprint)

    def build(self, options: BuildOptions, embedder, say=print, progress: bool = True):
        """A new build folder, switched to with one rename (see index/build.py)."""
        from index.build import build_index

        return build_index(options, embedder, say, progress)

    def manifest(self) -> Manifest:
        """The manifest of the folder the index link points to."""
        return read_manifest(self.index_dir)

    def exists(self) -> bool:
        """True when the folder holds a manifest."""
        return (self.index_dir / "manifest.json").is_file()


def open_store(url: str, index_dir: Path, ef_search: int = 200) -> Store:
    """The database store when `url` is set (postgresql://...), else the folder store at `index_dir`."""
    if url:
        from index.pgstore import PgStore

        return PgStore(url, ef_search)
    return FolderStore(Path(index_dir))
