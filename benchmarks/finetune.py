"""Does fine-tuning e5-small on the tuning questions carry over to held-out ones? (It did not; see README.)

    python benchmarks/finetune.py [--scale 100] [--lr 2e-5] [--epochs 1]

Trains the encoder layers (word embeddings frozen) on the answerable tuning questions of both shipped
benchmarks: each question against its best relevant chunk, with the other chunks of the batch and its
highest-ranked irrelevant chunk as negatives (contrastive loss, cosine × scale). Then prints R@1 / R@5 /
MRR@10 of dense and hybrid search with the base and the tuned model on the tuning and held-out parts,
over the same chunks and keyword scores as benchmarks/tune.py. About 20 minutes on 2 cores; nothing is
written into the project.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from assistant.queries import Judge, load_queries  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from benchmarks.calibrate import BENCHMARKS, ROOT, open_benchmark  # noqa: E402
from benchmarks.common import print_table  # noqa: E402
from benchmarks.tune import keyword_scores, normalised, scores_at  # noqa: E402
from index.embed import Embedder  # noqa: E402

BATCH = 32


def encode(model, texts: list[str], prompt: str) -> torch.Tensor:
    return model(model.tokenize([prompt + t for t in texts]))["sentence_embedding"]


@torch.no_grad()
def encode_all(model, texts: list[str], prompt: str) -> np.ndarray:
    return np.concatenate([encode(model, texts[i : i + BATCH], prompt).numpy() for i in range(0, len(texts), BATCH)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=100.0, help="cosine scale of the contrastive loss")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    random.seed(0)
    torch.manual_seed(0)
    embedder = Embedder(Settings.from_env().model)
    sets, pairs = {}, []
    for name, (_, files) in BENCHMARKS.items():
        index = open_benchmark(name, embedder).index
        judge = Judge(index.chunks, index.articles.values())
        ids = [c.id for c in index.chunks]
        for split in ("tune", "heldout"):
            queries = [q for f in files for q in load_queries(ROOT / f) if q.split == split and not q.out_of_scope]
            relevant = np.array([[i in rel for i in ids] for rel in map(judge.relevant, queries)])
            sets[name, split] = (index, queries, relevant)
            if split == "tune":
                dense = index.chunk_scores(embedder.encode_queries([q.query for q in queries]))
                for q, row, rel in zip(queries, dense, relevant):
                    if rel.any():
                        positive = max(np.flatnonzero(rel), key=lambda i: row[i])
                        negative = next(i for i in np.argsort(-row) if not rel[i])
                        pairs.append((q.query, index.chunks[positive].text, index.chunks[negative].text))

    model = embedder._model
    results = {"base": evaluate(model, sets)}
    for name, weights in model.named_parameters():
        weights.requires_grad = ".encoder." in name
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    steps = max(1, args.epochs * -(-len(pairs) // BATCH))  # linear warm-up over a tenth, then linear decay
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    model.train()
    model.max_seq_length = 256  # chunks are at most 220 tokens: less padding, same texts
    for epoch in range(args.epochs):
        random.shuffle(pairs)
        for start in range(0, len(pairs), BATCH):
            batch = pairs[start : start + BATCH]
            questions = encode(model, [b[0] for b in batch], "query: ")
            passages = encode(model, [b[1] for b in batch] + [b[2] for b in batch], "passage: ")
            loss = torch.nn.functional.cross_entropy(args.scale * questions @ passages.T, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}", file=sys.stderr)
    model.eval()
    model.max_seq_length = 512
    results["tuned"] = evaluate(model, sets)
    rows = [[m, key[0], key[1], *cells] for m, by_set in results.items() for key, cells in by_set.items()]
    print(f"\n{len(pairs)} tuning pairs, scale {args.scale}, lr {args.lr}, {args.epochs} epoch(s); R@1 / R@5 / MRR@10")
    print_table(["model", "benchmark", "split", "dense", "hybrid 0.4", "hybrid 0.5"], rows)


def evaluate(model, sets) -> dict:
    """Dense and hybrid scores of every benchmark split with this model's vectors."""
    out, vectors = {}, {}
    for (name, split), (index, queries, relevant) in sets.items():
        if name not in vectors:
            vectors[name] = encode_all(model, [c.text for c in index.chunks], "passage: ")
        dense = encode_all(model, [q.query for q in queries], "query: ") @ vectors[name].T
        keyword = keyword_scores(index, [q.query for q in queries], 60, 1.0)
        cells = [scores_at(dense, relevant)] + [
            scores_at(w * normalised(dense) + (1 - w) * normalised(keyword), relevant) for w in (0.4, 0.5)
        ]
        out[name, split] = [" / ".join(f"{v:.3f}" for v in c) for c in cells]
    return out


if __name__ == "__main__":
    main()
