"""Turn SweQUAD-MC (training + dev) into a corpus folder and a span-scored query file.

    python benchmarks/make_swequad.py [--source ../shared/benchmarks/swequad-mc] [--out eval/swequad]

Every distinct `context` becomes one corpus file (its first line is the title), written byte for
byte as stored (with its \\r\\n line ends) so the answer offsets point into the file. A context
whose body (all but the title line) repeats an earlier one up to case and spacing is the same page
saved twice: the corpus keeps one file (the loader would index such copies once anyway) and the
question's answer span is mapped into that file. Every question
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
    files: dict[str, str] = {}  # context -> file name
    bodies: dict[str, str] = {}  # a body's key -> the context kept for it
    queries = []
    for split, label in SPLITS.items():
        rows = json.loads((source / f"{split}.json").read_text(encoding="utf-8"))["data"]
        for number, row in enumerate(rows, 1):
            answer = next(c for c in row["choices"] if c["type"] == "Correct answer")
            context, start, end = row["context"], answer["start"], answer["end"]
            assert context[start:end] == answer["text"], (split, number)
            kept = bodies.setdefault(_body_key(context), context)
            if kept != context:
                context, start, end = kept, _moved(context, kept, start), _moved(context, kept, end - 1) + 1
                assert _folded(context[start:end]) == _folded(answer["text"]), (split, number)
            name = files.get(context)
            if name is None:
                name = files[context] = f"sq_{hashlib.sha1(context.encode()).hexdigest()[:12]}.txt"
                (corpus / name).write_bytes(context.encode("utf-8"))
            queries.append(
                {
                    "id": f"sq-{split}-{number:04d}",
                    "query": row["question"].strip(),
                    "lang": "sv",
                    "answer_contains": [answer["text"]],
                    "source": name,
                    "start": start,
                    "end": end,
                    "split": label,
                }
            )
    with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
    (out / "README.md").write_text(ATTRIBUTION, encoding="utf-8")
    shutil.copyfile(source / "LICENSE", out / "LICENSE")
    return len(files), len(queries)


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _body_start(context: str) -> int:
    """Where the text after the title line starts (the title is the first line that is not blank)."""
    end = context.find("\n", len(context) - len(context.lstrip()))
    return end + 1 if end >= 0 else len(context)


def _body_key(context: str) -> str:
    return _folded(context[_body_start(context) :])


def _moved(old: str, new: str, at: int) -> int:
    """Where character `at` of `old`'s body is in `new`, whose body is the same up to case and spacing."""
    nth = sum(not ch.isspace() for ch in old[_body_start(old) : at])
    seen = 0
    for i in range(_body_start(new), len(new)):
        if not new[i].isspace():
            if seen == nth:
                return i
            seen += 1
    raise ValueError("the bodies differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "benchmarks" / "swequad-mc")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "swequad")
    args = parser.parse_args()
    texts, questions = convert(args.source, args.out)
    print(f"{texts} texts and {questions} questions written to {args.out}")


if __name__ == "__main__":
    main()
