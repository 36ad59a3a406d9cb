"""Loading a large mixed archive: time and peak memory of `load_corpus` over generated files.

python benchmarks/ingest.py                 # 10,000 files in var/bench-ingest (made once, then reused)
python benchmarks/ingest.py --files 500     # a quick run

The folder mixes plain text, Markdown, saved web pages (with menus and banners), multi-page PDF
reports and Word memos, in Swedish and Danish, plus 1% damaged files and 2% copies saved under
another name. Each file's text is different (sentences of the shipped corpus, shuffled), so the
copies are the only duplicates. Loading runs in a fresh process, so its peak memory is its own.

Measured (2 shared cores, 2026-11-23): 10,000 files (generated in 70 s) loaded in 80-118 s
(85-125 files/s, depending on the other load on the machine), peak RSS 192 MB (a bare interpreter:
28 MB), 9,707 articles, 63,419 paragraphs, 293 skipped (190 copies, the rest the damaged files),
no file stopped the load.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures import make_fixtures as fx  # noqa: E402

MIX = (("txt", 0.40), ("md", 0.10), ("html", 0.25), ("pdf", 0.15), ("docx", 0.10))  # shares of the files
DAMAGED, COPIES = 0.01, 0.02


def sentences() -> list[str]:
    """Sentences of the shipped corpus: realistic Swedish and Danish text to shuffle into files."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus" / "articles").glob("*.txt")))
    # Without photo captions: "Foto:" makes the line above it an article title (listing pages).
    found = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [s for s in found if 40 <= len(s) <= 300 and "foto" not in s.casefold()]


def generate(folder: Path, count: int, seed: int = 7) -> None:
    """`count` files of the MIX into `folder`, in subfolders of 500 as archives are kept."""
    rng = random.Random(seed)
    pool = sentences()
    kinds = [kind for kind, share in MIX for _ in range(round(share * count))][:count]
    kinds += ["txt"] * (count - len(kinds))
    rng.shuffle(kinds)
    made: list[Path] = []
    for n, kind in enumerate(kinds):
        title = f"Rapport {n}: " + rng.choice(pool)[:60].rstrip()
        paragraphs = tuple(" ".join(rng.sample(pool, 3)) for _ in range(rng.randint(3, 8)))
        path = folder / f"{n // 500:03d}" / f"file-{n:05d}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if made and rng.random() < COPIES:
            original = rng.choice(made)
            shutil.copy(original, path.with_name(f"kopia-{n:05d}{original.suffix}"))
            continue
        if rng.random() < DAMAGED:
            path.write_bytes(b"%PDF-1.4 cut off" if kind == "pdf" else b"PK\x03\x04 damaged")
            continue
        if kind in ("txt", "md"):
            dated = f"Publicerad: {rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(10, 22)} 12:30"
            path.write_text("\n\n".join([title, dated, *paragraphs]), encoding="utf-8")
        elif kind == "html":
            path.write_text(fx.news_page(title, paragraphs), encoding="utf-8")
        elif kind == "pdf":
            fx.report_pdf(path, title, (paragraphs[:2], paragraphs[2:]))
        else:
            fx.memo_docx(path, title, (("Bakgrund", paragraphs[:2]), ("Åtgärder", paragraphs[2:])))
        made.append(path)


LOAD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from corpus.load import load_corpus
start = time.perf_counter()
result = load_corpus(Path({folder!r}))
seconds = time.perf_counter() - start
print(json.dumps({{
    "seconds": seconds,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "articles": len(result.articles),
    "files": len(result.files),
    "skipped": len(result.skipped),
    "copies": sum("copy of" in s.reason for s in result.skipped) + len(result.duplicates),
    "paragraphs": sum(len(a.paragraphs) for a in result.articles),
}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, default=ROOT / "var" / "bench-ingest")
    args = parser.parse_args()
    folder = args.folder / str(args.files)
    if not folder.is_dir():
        started = time.perf_counter()
        generate(folder, args.files)
        print(f"Generated {args.files} files in {folder} ({time.perf_counter() - started:.0f} s)")
    baseline = subprocess.run(
        [sys.executable, "-c", "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
        capture_output=True,
        text=True,
        check=True,
    )
    run = subprocess.run(
        [sys.executable, "-c", LOAD.format(root=str(ROOT), folder=str(folder))],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(run.stdout.strip().splitlines()[-1])
    print_table(
        ["files", "seconds", "files/s", "peak MB", "articles", "paragraphs", "skipped", "copies"],
        [
            [
                args.files,
                round(data["seconds"], 1),
                round(args.files / data["seconds"], 1),
                round(data["peak_mb"], 1),
                data["articles"],
                data["paragraphs"],
                data["skipped"],
                data["copies"],
            ]
        ],
    )
    print(f"(a bare Python process peaks at {float(baseline.stdout):.1f} MB)")


if __name__ == "__main__":
    main()
