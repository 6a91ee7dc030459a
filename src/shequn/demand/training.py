"""Training and evaluating the message classifier (``classifier.py``).

    shequn demand train       rebuild model/demand.joblib from data/demand/messages.jsonl
    shequn demand evaluate    macro-F1 on the corpus's fixed held-out split, per-label report

The shipped model learns from the project's own corpus only (hand-written, Apache-2.0). A chain
may add its own labelled complaint/praise texts (``--polarity-extra``, e.g. its product reviews)
to the polarity model; the benchmark does so with the public review data's training split to
check that the recipe reaches the reference on real reviews — that data is never shipped.

Deterministic: the same corpus gives the same model (LinearSVC with a fixed random_state).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from .classifier import LABELS, POLAR, Model, polarity_of, predict, words

CORPUS = Path(__file__).resolve().parents[3] / "data" / "demand" / "messages.jsonl"


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    heldout: bool = False


def load_corpus(path: Path = CORPUS) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["label"] not in LABELS:
                raise ValueError(f"{path}:{number}: unknown label {row['label']!r}")
            examples.append(Example(row["text"], row["label"], row["split"] == "heldout"))
    return examples


def load_reviews(path: Path, *, positive: str = "1") -> list[Example]:
    """A review CSV with ``label`` (1 positive) and ``review`` columns as complaint/praise."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [
            Example(row["review"].strip(), "praise" if row["label"] == positive else "complaint")
            for row in csv.DictReader(handle)
            if (row.get("review") or "").strip()
        ]


def _features() -> FeatureUnion:
    return FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)),
            ("words", TfidfVectorizer(analyzer=words, sublinear_tf=True)),
        ]
    )


def _svm(c: float) -> LinearSVC:
    return LinearSVC(C=c, random_state=0)


def train(
    examples: Sequence[Example], *, polarity_extra: Sequence[Example] = (), note: str = ""
) -> Model:
    """The six-way model from ``examples`` (training split only) and the polarity model from
    their complaints and praise plus ``polarity_extra``."""
    train_rows = [e for e in examples if not e.heldout]
    six = Pipeline([("features", _features()), ("svm", _svm(0.5))])
    six.fit([e.text for e in train_rows], [e.label for e in train_rows])
    polar_rows = [e for e in train_rows if e.label in POLAR] + list(polarity_extra)
    polarity = Pipeline([("features", _features()), ("svm", _svm(0.5))])
    polarity.fit([e.text for e in polar_rows], [e.label for e in polar_rows])
    return Model(six=six, polarity=polarity, trained_on=note)


@dataclass(frozen=True)
class Evaluation:
    macro_f1: float
    report: str


def evaluate(model: Model, examples: Iterable[Example]) -> Evaluation:
    """The held-out split, through the whole classifier (rules included)."""
    heldout = [e for e in examples if e.heldout]
    predicted = [p.label for p in predict(model, [e.text for e in heldout])]
    truth = [e.label for e in heldout]
    return Evaluation(
        macro_f1=float(f1_score(truth, predicted, average="macro", labels=list(LABELS))),
        report=str(classification_report(truth, predicted, labels=list(LABELS), digits=3)),
    )


def polarity_accuracy(model: Model, reviews: Sequence[Example]) -> float:
    return float(
        accuracy_score([r.label for r in reviews], polarity_of(model, [r.text for r in reviews]))
    )


def save(model: Model, path: Path) -> None:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path, compress=3)
