"""What a group message is: one of six labels, with a score.

    need       需求/痛点      a wish the store does not meet yet
    complaint  投诉          something that went wrong
    praise     表扬
    question   咨询
    ad         广告/spam
    chitchat   闲聊          greetings, thanks, staff notices

Rules where rules are right: a link, a phone number or a WeChat id asked to be added is an ad,
whatever else the message says (score 1.0). Everything else goes to the trained model shipped
with the package (``model/demand.joblib``, built by ``training.py`` from ``data/demand/``):

- features: TF-IDF of character 1–3-grams (robust to typos, dialect and emoji) and of jieba
  words and word pairs, segmented with a retail dictionary (``model/userdict.txt``) plus, at run
  time, the chain's own product and category names (``add_terms``);
- a linear SVM over all six labels, then a second linear SVM that decides only between
  complaint and praise when the first says one of them (polarity learns from more, and longer,
  examples than the six-way model has of each).

The score is a softmax of the SVM margins: a ranking of confidence, not a probability.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jieba_fast as jieba  # jieba with its DAG and route in C: same dictionary, same API
import numpy as np

LABELS = ("need", "complaint", "praise", "question", "ad", "chitchat")
MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_PATH = MODEL_DIR / "demand.joblib"
USER_DICT = MODEL_DIR / "userdict.txt"
POLAR = ("complaint", "praise")

# --- rules ------------------------------------------------------------------------------------
_DIGIT = r"[0-9０-９]"
_SEP = r"[\s\-－—.·、]?"
PHONE = re.compile(rf"(?<![0-9０-９])1{_SEP}[3-9３-９](?:{_SEP}{_DIGIT}){{9}}(?![0-9０-９])")
LINK = re.compile(
    r"(?:https?://|www\.|[a-z0-9-]+\.(?:com|cn|net|top|xyz|vip|shop|cc)\b)", re.IGNORECASE
)
# asked to add someone: 加微信/加我/加V/加vx/薇信/威信/V信/卫星 …, or an id after vx:/wx:/微信号
WECHAT_ID = re.compile(
    r"(?:加(?:我|个)?(?:微信|薇信|威信|卫星|v信|vx|wx|v|V|❤|好友)"
    r"|(?:vx|VX|wx|WX|Vx|微信号|薇信|威信|V信|v信|卫星号|薇)\s*[:：]?\s*[A-Za-z][A-Za-z0-9_-]{4,})"
)
# one-character-per-word obfuscation: "加 V 信" → "加V信" before matching
_SPACES = re.compile(r"(?<=[\u4e00-\u9fffA-Za-z])\s+(?=[\u4e00-\u9fffA-Za-z0-9])")


def rule_label(text: str) -> str | None:
    """ "ad" when a rule is certain, else None (the model decides)."""
    squeezed = _SPACES.sub("", text)
    if LINK.search(text) or PHONE.search(text) or WECHAT_ID.search(squeezed):
        return "ad"
    return None


# --- segmentation -----------------------------------------------------------------------------
_tokenizer_lock = threading.Lock()


@cache
def _tokenizer() -> jieba.Tokenizer:
    jieba.setLogLevel(60)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    if USER_DICT.exists():
        tokenizer.load_userdict(str(USER_DICT))
    return tokenizer


_taught: set[str] = set()


def add_terms(terms: Iterable[str]) -> None:
    """Teach segmentation the chain's own words (product and category names): a member's
    "艾草暖宫贴" stays one word, so it can be linked to the product. Each word once: jieba adds
    a word's frequency to its total on every ``add_word``, so teaching the catalog again on
    every sweep would slowly shift how everything else is segmented."""
    tokenizer = _tokenizer()
    with _tokenizer_lock:
        for term in terms:
            term = term.strip()
            if 2 <= len(term) <= 20 and term not in _taught:
                tokenizer.add_word(term, freq=50_000)
                _taught.add(term)


_segmented = threading.local()  # one batch's segmentation, shared by both models


def words(text: str) -> list[str]:
    """jieba words and adjacent word pairs (the model's second feature family)."""
    ready: dict[str, list[str]] | None = getattr(_segmented, "batch", None)
    if ready is not None and text in ready:
        return ready[text]
    found = [w for w in _tokenizer().lcut(text, HMM=False) if not w.isspace()]
    return found + [f"{a}_{b}" for a, b in zip(found, found[1:], strict=False)]


class _SegmentOnce:
    """Within a ``predict`` call each distinct text is segmented once, not once per model."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts

    def __enter__(self) -> None:
        _segmented.batch = None
        _segmented.batch = {text: words(text) for text in set(self.texts)}

    def __exit__(self, *_: object) -> None:
        _segmented.batch = None


# --- the model --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Labelled:
    label: str
    score: float
    by_rule: bool = False


@dataclass
class Model:
    """The trained pair (what ``training.train`` returns and ``MODEL_PATH`` holds)."""

    six: Any  # a fitted sklearn Pipeline over LABELS
    polarity: Any  # a fitted sklearn Pipeline over POLAR
    trained_on: str = ""  # what it was trained from, for the record


def _softmax_top(margins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shifted = margins - margins.max(axis=1, keepdims=True)
    weights = np.exp(3.0 * shifted)  # temperature: SVM margins are about ±1
    best = margins.argmax(axis=1)
    return best, weights[np.arange(len(best)), best] / weights.sum(axis=1)


def predict(model: Model, texts: Sequence[str]) -> list[Labelled]:
    """Label every text (rules first, then the model), in order."""
    out: list[Labelled] = [Labelled("ad", 1.0, by_rule=True)] * len(texts)
    rest = [i for i, text in enumerate(texts) if rule_label(text) is None]
    if rest:
        batch = [texts[i] for i in rest]
        with _SegmentOnce(batch):
            for i, labelled in zip(rest, _model_labels(model, batch), strict=True):
                out[i] = labelled
    return out


def _model_labels(model: Model, batch: list[str]) -> list[Labelled]:
    margins = np.asarray(model.six.decision_function(batch))
    best, scores = _softmax_top(margins)
    classes = list(model.six.classes_)
    labels = [str(classes[b]) for b in best]
    polar_rows = [k for k, label in enumerate(labels) if label in POLAR]
    if polar_rows:
        for k, label in zip(
            polar_rows, polarity_of(model, [batch[k] for k in polar_rows]), strict=True
        ):
            labels[k] = label
    return [
        Labelled(label, round(float(score), 4)) for label, score in zip(labels, scores, strict=True)
    ]


def polarity_of(model: Model, texts: Sequence[str]) -> list[str]:
    """Complaint or praise only (the check on public product reviews)."""
    margin = np.asarray(model.polarity.decision_function(list(texts)))
    negative, positive = list(model.polarity.classes_)
    return [str(positive) if m > 0 else str(negative) for m in margin]


_loaded: Model | None = None
_load_lock = threading.Lock()


def shipped_model() -> Model:
    """The model shipped with the package, loaded once per process."""
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                import joblib

                _loaded = joblib.load(MODEL_PATH)
    return _loaded


def classify(texts: Sequence[str]) -> list[Labelled]:
    return predict(shipped_model(), texts)
