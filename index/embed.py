"""The embedding model behind the index: a sentence-transformers folder, loaded once.

Queries and passages get the model's own prompts ("query: " / "passage: " for e5), through
`encode_query` / `encode_document`.
"""

from __future__ import annotations

import hashlib
import shlex
from functools import cached_property
from pathlib import Path

import numpy as np

from index.errors import ModelError


class Embedder:
    def __init__(self, model: str):
        self.model_name = model

    def _checked_path(self) -> Path:
        """The model's path, if it can be a model folder (ModelError if it plainly cannot)."""
        path = Path(self.model_name)
        if not path.exists() and (path.is_absolute() or self.model_name.startswith(".")):
            raise ModelError(f"Model folder {path} does not exist: run `assistant model prepare`.")
        if path.exists() and not path.is_dir():
            raise ModelError(
                f"The model path {path} is a file, not a model folder: set ASSISTANT_MODEL to the folder "
                "`assistant model prepare` wrote."
            )
        if path.is_dir() and not (path / "config.json").is_file():
            raise _load_error(self.model_name, FileNotFoundError("no config.json"))
        return path

    @cached_property
    def _model(self):
        self._checked_path()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # its load report is noise for our users

        try:
            return SentenceTransformer(self.model_name, device="cpu")
        except Exception as exc:  # a bad folder raises anything: SafetensorError, ValueError, KeyError, OSError...
            raise _load_error(self.model_name, exc) from exc

    @property
    def dimension(self) -> int:
        return self._model.get_embedding_dimension()

    @property
    def max_tokens(self) -> int:
        return self._model.max_seq_length

    @cached_property
    def fingerprint(self) -> str:
        """Identifies the weights without hashing 470 MB: small config files plus file sizes."""
        # Checked first: a missing folder was otherwise reported as an index "built with another model".
        path = self._checked_path()
        if not path.is_dir():
            return hashlib.sha256(self.model_name.encode()).hexdigest()[:16]
        digest = hashlib.sha256()
        for file in sorted(path.rglob("*")):
            if file.is_file():
                digest.update(file.relative_to(path).as_posix().encode())
                small = file.suffix == ".json" and file.stat().st_size < 1_000_000
                digest.update(file.read_bytes() if small else str(file.stat().st_size).encode())
        return digest.hexdigest()[:16]

    def count_tokens(self, text: str) -> int:
        """Content tokens, without the special tokens and prompt."""
        return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_documents(self, texts: list[str], batch_size: int = 16, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode_document(
            texts, batch_size=batch_size, show_progress_bar=progress, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Many queries in batches: several times faster than one `encode_query` call each."""
        vectors = self._model.encode_query(texts, batch_size=batch_size, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def encode_query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.encode_query([text], normalize_embeddings=True), dtype=np.float32)[0]


def embed_queries(embedder, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit vectors of many query texts [texts, dimension]: in batches when the embedder can (Embedder),
    else one `encode_query` call each (the tests' fake models)."""
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    batch = getattr(embedder, "encode_queries", None)
    vectors = batch(texts, batch_size) if batch else np.stack([embedder.encode_query(t) for t in texts])
    return np.asarray(vectors, dtype=np.float32)


def _load_error(name: str, exc: Exception) -> ModelError:
    """One line saying why the model did not load and what to do about it."""
    lines = str(exc).strip().splitlines()
    detail = type(exc).__name__ + (f": {lines[0][:160]}" if lines else "")
    path = Path(name)
    if not path.is_dir():  # a hub id
        return ModelError(f"Cannot load model {name} ({detail}).")
    from index.convert import folder_state

    if folder_state(path) in ("empty", "ours"):
        return ModelError(
            f"The model folder {path} is damaged or not a converted model ({detail}): "
            f"run `assistant model prepare --dest {shlex.quote(str(path))}` to (re)convert it."
        )
    return ModelError(
        f"The model folder {path} is damaged or not a converted model ({detail}): set ASSISTANT_MODEL to the "
        "folder `assistant model prepare` wrote, or run `assistant model prepare --dest NEW_FOLDER`."
    )
