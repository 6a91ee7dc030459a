"""`shequn demand classify | train | evaluate`: the demand river's message classifier."""

from __future__ import annotations

import argparse
import sys

from ._common import _fail


def cmd_demand_classify(args: argparse.Namespace) -> int:
    from shequn.demand.jsonl import BadLine, classify_lines

    try:
        classify_lines(sys.stdin.buffer, sys.stdout)  # bytes: bad UTF-8 is named, not patched
    except BadLine as bad:
        return _fail(str(bad))
    return 0


def cmd_demand_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shequn.demand import training

    corpus = Path(args.corpus)
    extra = Path(args.polarity_extra) if args.polarity_extra else None
    for path in (corpus, extra):
        if path is not None and not path.is_file():
            return _fail(f"找不到文件: {path}")
    examples = training.load_corpus(corpus)
    reviews = training.load_reviews(extra) if extra else []
    model = training.train(
        examples, polarity_extra=reviews, note=f"{corpus.name} + {len(reviews)} 条评价"
    )
    out = Path(args.out)
    training.save(model, out)
    evaluation = training.evaluate(model, examples)
    print(f"已训练 {len(examples)} 条语料(+{len(reviews)} 条评价) → {out}")
    print(f"留出集 macro-F1 {evaluation.macro_f1:.3f}")
    return 0


def cmd_demand_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shequn.demand import training
    from shequn.demand.classifier import shipped_model

    corpus = Path(args.corpus)
    if not corpus.is_file():
        return _fail(f"找不到文件: {corpus}")
    evaluation = training.evaluate(shipped_model(), training.load_corpus(corpus))
    print(evaluation.report)
    print(f"macro-F1 {evaluation.macro_f1:.3f}")
    return 0
