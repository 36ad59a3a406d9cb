"""Turn SweQUAD-MC (training + dev) into a corpus folder and a span-scored query file.

    python benchmarks/make_swequad.py [--source ../shared/benchmarks/swequad-mc] [--out eval/swequad]

Every distinct `context` becomes one corpus file (its first line is the title), written byte for
byte as stored (with its \\r\\n line ends) so the answer offsets point into the file. Every question
becomes a query with the gold answer's `source`, `start` and `end`; training questions are the
tuning part (`"split": "tune"`), dev questions the held-out part (`"split": "heldout"`).

SweQUAD-MC is by Dmytro Kalpakchi (CC BY 4.0); the attribution is written beside the data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"training": "tune", "dev": "heldout"}
ATTRIBUTION = """# SweQUAD-MC as a retrieval benchmark

`corpus/` (one file per distinct reading text) and `queries.jsonl` (one line per question, with the
character span of its correct answer in its corpus file) are generated from the training and dev
splits of **SweQUAD-MC** by `python benchmarks/make_swequad.py`. Training questions are marked
`"split": "tune"` (used to choose defaults), dev questions `"split": "heldout"` (only reported).

- Source: Dmytro Kalpakchi, SweQUAD-MC, https://github.com/dkalpakchi/SweQUAD-MC, from the paper
  "BERT-based distractor generation for Swedish reading comprehension questions using a small-scale
  dataset" (INLG 2021). The texts are Swedish public-authority web pages.
- License: Creative Commons Attribution 4.0 International (`LICENSE` in this folder). Changes made
  here: each text saved as its own file; questions reduced to their correct answer's span.
"""


def convert(source: Path, out: Path) -> tuple[int, int]:
    """Write `out/corpus/*.txt`, `out/queries.jsonl`, README and LICENSE; return (texts, questions)."""
    corpus = out / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)  # only ever the generated folder
    corpus.mkdir(parents=True)
    files: dict[str, str] = {}
    queries = []
    for split, label in SPLITS.items():
        rows = json.loads((source / f"{split}.json").read_text(encoding="utf-8"))["data"]
        for number, row in enumerate(rows, 1):
            context = row["context"]
            name = files.get(context)
            if name is None:
                name = files[context] = f"sq_{hashlib.sha1(context.encode()).hexdigest()[:12]}.txt"
                (corpus / name).write_bytes(context.encode("utf-8"))
            answer = next(c for c in row["choices"] if c["type"] == "Correct answer")
            assert context[answer["start"] : answer["end"]] == answer["text"], (split, number)
            queries.append(
                {
                    "id": f"sq-{split}-{number:04d}",
                    "query": row["question"].strip(),
                    "lang": "sv",
                    "answer_contains": [answer["text"]],
                    "source": name,
                    "start": answer["start"],
                    "end": answer["end"],
                    "split": label,
                }
            )
    with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
    (out / "README.md").write_text(ATTRIBUTION, encoding="utf-8")
    shutil.copyfile(source / "LICENSE", out / "LICENSE")
    return len(files), len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "benchmarks" / "swequad-mc")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "swequad")
    args = parser.parse_args()
    texts, questions = convert(args.source, args.out)
    print(f"{texts} texts and {questions} questions written to {args.out}")


if __name__ == "__main__":
    main()
