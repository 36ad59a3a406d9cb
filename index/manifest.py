"""The index manifest: one typed record, one reader and one writer.

The manifest says how an index was built (model, chunking, corpus) and what it holds. It is the
last file a build writes, so a folder without a readable one is an unfinished build.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from index.errors import IndexMismatchError, IndexMissingError

# 3: `files` records the size and checksum of every index file.
# 4: chunks embedded without their header; BM25 with character n-grams.
FORMAT_VERSION = 6  # 5: one vector per sentence window of a chunk (index/windows.py); 6: the word bridge
FILENAME = "manifest.json"
REBUILD = "run `assistant index build` to rebuild it"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    dimension: int
    fingerprint: str


@dataclass(frozen=True)
class Chunking:
    chunk_tokens: int
    chunk_overlap: int
    context_words: int
    window_sentences: int


@dataclass(frozen=True)
class Counts:
    files: int
    skipped: int
    articles: int
    chunks: int


@dataclass(frozen=True)
class FileInfo:
    """Size and BLAKE2b checksum of one index file, checked on every load."""

    size: int
    blake2b: str

    @classmethod
    def of(cls, data: bytes) -> FileInfo:
        """The size and checksum of a file's bytes."""
        return cls(len(data), hashlib.blake2b(data, digest_size=16).hexdigest())


@dataclass(frozen=True)
class Manifest:
    model: ModelInfo
    chunking: Chunking
    index_type: str
    corpus_path: str
    corpus_fingerprint: str
    counts: Counts
    languages: tuple[str, ...]
    built_at: str
    build_seconds: float = 0.0
    files: dict[str, FileInfo] = field(default_factory=dict)  # path inside the index folder -> FileInfo
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        """The manifest as the JSON text written to disk."""
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        """Raises ValueError/TypeError/KeyError on anything that is not a manifest of this format."""
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        languages = data["languages"]
        if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
            raise TypeError("languages is not a list of strings")
        return cls(
            model=ModelInfo(**_typed(data["model"], name=str, path=str, dimension=int, fingerprint=str)),
            chunking=Chunking(
                **_typed(data["chunking"], chunk_tokens=int, chunk_overlap=int, context_words=int, window_sentences=int)
            ),
            index_type=_check(data["index_type"], str),
            corpus_path=_check(data["corpus_path"], str),
            corpus_fingerprint=_check(data["corpus_fingerprint"], str),
            counts=Counts(**_typed(data["counts"], files=int, skipped=int, articles=int, chunks=int)),
            languages=tuple(languages),
            built_at=_check(data["built_at"], str),
            build_seconds=float(_check(data.get("build_seconds", 0.0), (int, float))),
            files=_files(data["files"]),
            format_version=_check(data["format_version"], int),
        )


def _check(value, kind):
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{repr(value)[:60]} is not of the expected type")
    return value


def _typed(section, **kinds) -> dict:
    if not isinstance(section, dict):
        raise TypeError("section is not a JSON object")
    return {key: _check(section[key], kind) for key, kind in kinds.items()}


def _files(section) -> dict[str, FileInfo]:
    if not isinstance(section, dict) or not section:
        raise TypeError("files is not a non-empty JSON object")
    return {_check(name, str): FileInfo(**_typed(info, size=int, blake2b=str)) for name, info in section.items()}


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write the manifest atomically: a build killed meanwhile leaves no half manifest."""
    tmp = folder / f"{FILENAME}.tmp"
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    tmp.replace(folder / FILENAME)


def read_manifest(index_dir: Path, label: Path | None = None) -> Manifest:
    """The manifest of the index at `index_dir`; one clear error when there is none or it is unusable.

    `label` is the path to name in messages (the index link when `index_dir` is the build it points to).
    """
    label = label or index_dir
    path = index_dir / FILENAME
    if not path.is_file():
        raise IndexMissingError(f"No index at {label}: run `assistant index build` to build it.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise IndexMismatchError(f"The index manifest at {label} is damaged ({exc}): {REBUILD}.") from None
    if not isinstance(data, dict):
        raise IndexMismatchError(f"The index manifest at {label} is damaged (not a JSON object): {REBUILD}.")
    if "format_version" not in data:
        raise IndexMismatchError(f"The index manifest at {label} is damaged (no format_version): {REBUILD}.")
    version = data["format_version"]
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"The index at {label} has format {version!r}, this version reads {FORMAT_VERSION}: {REBUILD}."
        )
    try:
        return Manifest.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexMismatchError(f"The index manifest at {label} is damaged ({exc!r}): {REBUILD}.") from None
