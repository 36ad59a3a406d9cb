"""A matrix of bad corpus inputs, each dropped into the fixture corpus before a full index build.

For every case the build finishes (no exception, no hang), the fixture's own articles are all
indexed, and the bad file is either skipped with a one-line reason that says what it is, or
indexed correctly (title, offsets, chunk budget).
"""

from __future__ import annotations

import errno
import io
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from corpus.load import read_source
from index.build import build_index
from index.store import load_index

FIXTURE_ARTICLES = 5  # articles of tests/fixtures/corpus
WORDS = "kommunen anställer fler handledare inom hemtjänsten och äldreomsorgen i hela länet "
BIG_LINE = (WORDS * (2_000_000 // len(WORDS) + 1)).strip()  # 2 MB, no sentence punctuation


@dataclass(frozen=True)
class Case:
    make: Callable  # (corpus folder, tmp_path, monkeypatch) -> None
    skipped: dict[str, str] | None = None  # path -> a phrase its reason must contain
    check: Callable | None = None  # (corpus folder, stored index) -> None, for files that are indexed
    settings: dict | None = None


def write(name: str, data: bytes | str) -> Callable:
    def make(folder: Path, tmp_path: Path, monkeypatch) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    return make


def on_open(name: str, action: Callable) -> Callable:
    """Run `action(path)` when the loader opens `name`: the file's state changes after it was listed."""

    def make(folder: Path, tmp_path: Path, monkeypatch) -> None:
        write(name, "Rubrik\n\nEn vanlig text om hemtjänsten.\n")(folder, tmp_path, monkeypatch)
        real_os_open, real_io_open = os.open, io.open

        def hook(path) -> None:
            if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).endswith(name):
                action(path)

        def os_open(path, *args, **kwargs):
            hook(path)
            return real_os_open(path, *args, **kwargs)

        def io_open(file, *args, **kwargs):
            hook(file)
            return real_io_open(file, *args, **kwargs)

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(io, "open", io_open)  # pathlib's read_bytes opens through io.open

    return make


def vanish(path) -> None:
    if os.path.exists(path):
        os.unlink(path)


def deny(path) -> None:
    raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))


def unreadable(folder: Path, tmp_path: Path, monkeypatch) -> None:
    if os.geteuid() != 0:
        write("locked.txt", "Rubrik\n\nText.\n")(folder, tmp_path, monkeypatch)
        (folder / "locked.txt").chmod(0)
    else:  # root reads any file whatever its mode: the operating system's refusal is simulated
        on_open("locked.txt", deny)(folder, tmp_path, monkeypatch)


def link(name: str, target) -> Callable:
    def make(folder: Path, tmp_path: Path, monkeypatch) -> None:
        (folder / name).symlink_to(target(folder, tmp_path) if callable(target) else target)

    return make


def outside(folder: Path, tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("Hemligt\n\nEtt dokument utanför korpusen.\n")
    return secret


def loop(folder: Path, tmp_path: Path, monkeypatch) -> None:
    (folder / "a.txt").symlink_to("b.txt")
    (folder / "b.txt").symlink_to("a.txt")


def folder_loop(folder: Path, tmp_path: Path, monkeypatch) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")  # walking into it would never end


def fifo(folder: Path, tmp_path: Path, monkeypatch) -> None:
    os.mkfifo(folder / "pipe.txt")


def folder_named_txt(folder: Path, tmp_path: Path, monkeypatch) -> None:
    write("notes.txt/inner.txt", "Inuti mappen\n\nEn artikel i en mapp som heter notes.txt.\n")(
        folder, tmp_path, monkeypatch
    )


def bad_name(folder: Path, tmp_path: Path, monkeypatch) -> None:
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.txt"), "w", encoding="utf-8") as fh:
        fh.write("Café\n\nEn text i en fil vars namn är latin-1.\n")


def article(index, source: str):
    found = [a for a in index.articles.values() if a.source == source]
    assert len(found) == 1, f"{source}: {len(found)} articles"
    return found[0]


def check_bom(folder: Path, index) -> None:
    found = article(index, "bom.txt")
    assert found.title == "Rubrik med BOM"
    text = read_source(folder, "bom.txt")
    assert text[found.start :].startswith(found.title)
    assert all(text[p.start : p.end] == p.text for p in found.paragraphs)


def check_big_line(source: str, title: str) -> Callable:
    def check(folder: Path, index) -> None:
        found = article(index, source)
        assert found.title == title
        chunks = [c for c in index.chunks if c.source == source]
        assert max(len(c.text.split()) for c in chunks) <= index.manifest.chunking.chunk_tokens
        assert " ".join(c.text for c in chunks).split() == BIG_LINE.split()
        text = read_source(folder, source)
        assert all(text[c.start : c.end] == c.text for c in chunks)

    return check


def check_crlf(folder: Path, index) -> None:
    found = article(index, "windows.txt")
    assert found.title == "Rubrik" and all("\r" not in p.text for p in found.paragraphs)
    assert [p.text for p in found.paragraphs] == ["Första stycket.", "Andra stycket."]


def check_inner(folder: Path, index) -> None:
    assert article(index, "notes.txt/inner.txt").title == "Inuti mappen"


def check_nothing_extra(folder: Path, index) -> None:
    assert len(index.articles) == FIXTURE_ARTICLES


TEXT = "Rubrik\n\nKommunen satsar på hemtjänsten i hela länet.\n"
BOILERPLATE = "Prenumerera på nyhetsbrevet\nFacebook\nEtikettarkiv: Vård\nAnsök här\n"

CASES = {
    "empty": Case(write("empty.txt", b""), {"empty.txt": "empty"}),
    "whitespace only": Case(write("blank.txt", b" \n\t\n   \n"), {"blank.txt": "empty"}),
    "UTF-8 BOM only": Case(write("bom-only.txt", b"\xef\xbb\xbf\n"), {"bom-only.txt": "empty"}),
    "binary": Case(
        write("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))), {"image.txt": "binary"}
    ),
    "NUL bytes in text": Case(write("nul.txt", b"Rubrik\n\nText med \x00 i sig.\n"), {"nul.txt": "binary"}),
    "latin-1": Case(write("latin1.txt", TEXT.encode("latin-1")), {"latin1.txt": "not valid UTF-8"}),
    "UTF-16 LE with BOM": Case(
        write("utf16le.txt", b"\xff\xfe" + TEXT.encode("utf-16-le")),
        {"utf16le.txt": "it is UTF-16: convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)"},
    ),
    "UTF-16 BE with BOM": Case(
        write("utf16be.txt", b"\xfe\xff" + TEXT.encode("utf-16-be")), {"utf16be.txt": "it is UTF-16: convert"}
    ),
    "UTF-16 LE without BOM": Case(
        write("utf16-nobom.txt", TEXT.encode("utf-16-le")), {"utf16-nobom.txt": "UTF-16 without a byte-order mark"}
    ),
    "UTF-8 BOM": Case(
        write("bom.txt", b"\xef\xbb\xbfRubrik med BOM\n\nEn text som b\xc3\xb6rjar med BOM.\n"), check=check_bom
    ),
    "CRLF line ends": Case(
        write("windows.txt", b"Rubrik\r\n\r\nF\xc3\xb6rsta stycket.\r\nAndra stycket.\r\n"), check=check_crlf
    ),
    "symlink outside": Case(link("link.txt", outside), {"link.txt": "outside the corpus"}),
    "symlink loop": Case(loop, {"a.txt": "loops", "b.txt": "loops"}),
    "symlink to itself": Case(link("self.txt", "self.txt"), {"self.txt": "loops"}),
    "dangling symlink": Case(link("dangling.txt", "nowhere.txt"), {"dangling.txt": "does not exist"}),
    "linked folder loop": Case(folder_loop, check=check_nothing_extra),
    "non-UTF-8 file name": Case(bad_name, {"caf\ufffd.txt": "name is not valid UTF-8"}),
    "folder named .txt": Case(folder_named_txt, {"notes.txt": "folder"}, check=check_inner),
    "FIFO named .txt": Case(fifo, {"pipe.txt": "not a regular file"}),
    "unreadable file": Case(unreadable, {"locked.txt": "permission denied"}),
    "file vanishing before read": Case(on_open("vanish.txt", vanish), {"vanish.txt": "disappeared"}),
    "over-size file": Case(
        write("big.txt", "Stor\n\n" + "Ett stycke text om omsorgen. " * 3000),
        {"big.txt": "larger than 0.05 MB (ASSISTANT_MAX_FILE_MB): split it or raise the limit"},
        settings={"max_file_mb": 0.05},
    ),
    "2 MB line without punctuation": Case(
        write("line.txt", "En rad utan punkt\n\n" + BIG_LINE + "\n"),
        check=check_big_line("line.txt", "En rad utan punkt"),
    ),
    "2 MB line and nothing else": Case(
        write("only-line.txt", BIG_LINE), check=check_big_line("only-line.txt", BIG_LINE[:80].rsplit(" ", 1)[0])
    ),
    "HTML with only scripts": Case(
        write("script.html", "<html><head><script>var a = 1;</script><style>p {}</style></head><body></body></html>"),
        {"script.html": "no article text"},
    ),
    "only boilerplate": Case(write("boiler.txt", BOILERPLATE), {"boiler.txt": "no article text"}),
    "title line only": Case(write("title.txt", "Bara en rubrik\n"), {"title.txt": "only a title line"}),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_corpus_input(name, tiny_settings, fake_embedder, tmp_path, monkeypatch):
    case = CASES[name]
    folder = tiny_settings.corpus_dir
    case.make(folder, tmp_path, monkeypatch)
    settings = replace(tiny_settings, **(case.settings or {}))
    said: list[str] = []
    signal.alarm(60)  # a FIFO must not make the build wait for a writer
    try:
        report = build_index(settings.build_options(), fake_embedder, say=said.append, progress=False)
    finally:
        signal.alarm(0)
    monkeypatch.undo()
    reasons = {s.path: s.reason for s in report.skipped}
    assert set(reasons) == set(case.skipped or {}), said
    for path, phrase in (case.skipped or {}).items():
        assert phrase in reasons[path]
        assert f"Skipped {path}: {reasons[path]}." in said
    assert all("\n" not in line for line in said)
    index = load_index(settings.index_dir)
    assert {a.source for a in index.articles.values()} >= {"archive.txt", "holstebro.txt", "page.html"}
    assert len([a for a in index.articles.values() if a.source in ("archive.txt", "holstebro.txt", "page.html")]) == (
        FIXTURE_ARTICLES
    )
    if case.check:
        case.check(folder, index)
    else:
        assert len(index.articles) == FIXTURE_ARTICLES
