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

Training is plain scikit-learn. Predicting uses the same fitted vectorizers (their analyzers,
vocabularies and IDF weights) but counts a whole batch's features at once (``_BatchTfidf``):
scikit-learn's ``transform`` looks each feature up in a Python loop, which was over half the
classifier's time, and its char analyzer makes every n-gram as a string; here character
n-grams are integer keys found with numpy. ``tests/demand/test_classifier.py`` checks that both
give the same matrix. Where the time goes now (per 24-character message, this machine class):
segmentation ~19 µs, the SVM and sparse work ~27 µs, the rules ~6 µs, characters ~2 µs.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import numpy as np
import rjieba  # jieba-rs: jieba's dictionary and algorithm in Rust, ~7× jieba_fast
import scipy.sparse as sp

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
def _tokenizer() -> rjieba.Jieba:
    """jieba's own dictionary plus the retail one (jieba's user-dictionary lines: word, then
    optionally its frequency and part of speech)."""
    tokenizer = rjieba.Jieba()
    if USER_DICT.exists():
        for line in USER_DICT.read_text(encoding="utf-8").splitlines():
            word, *rest = line.split() or [""]
            if word:
                frequency = int(rest[0]) if rest and rest[0].isdecimal() else None
                tokenizer.add_word(word, frequency, rest[1] if len(rest) > 1 else None)
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
                tokenizer.add_word(term, 50_000, None)
                _taught.add(term)


def words(text: str) -> list[str]:
    """jieba words and adjacent word pairs (the model's second feature family). Under the lock
    ``add_terms`` takes: the Rust tokenizer refuses to be cut while a word is being added."""
    with _tokenizer_lock:
        try:
            cut = _tokenizer().cut(text, False)  # no HMM: only dictionary words, as trained
        except UnicodeEncodeError:  # a lone surrogate (JSON may carry one) is no UTF-8
            cut = _tokenizer().cut(text.encode("utf-8", "replace").decode(), False)
    found = [w for w in cut if not w.isspace()]
    return found + [f"{a}_{b}" for a, b in zip(found, found[1:], strict=False)]


# --- the model --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Labelled:
    label: str
    score: float
    by_rule: bool = False


@dataclass(eq=False)  # hashed by identity: its compiled form is cached per loaded model
class Model:
    """The trained pair (what ``training.train`` returns and ``MODEL_PATH`` holds)."""

    six: Any  # a fitted sklearn Pipeline over LABELS
    polarity: Any  # a fitted sklearn Pipeline over POLAR
    trained_on: str = ""  # what it was trained from, for the record


_CODE_BITS = 21  # every Unicode code point fits: up to three of them in one uint64 key


class _CharKeys:
    """A char vectorizer's vocabulary as integer keys: an n-gram of code points c1 c2 c3 is
    ``c1 << 42 | c2 << 21 | c3``, one sorted key array (and its columns) per length, so a whole
    batch's n-grams are looked up by ``np.searchsorted`` instead of one ``dict.get`` on a new
    string each — and never made as strings at all."""

    def __init__(self, vocabulary: dict[str, int], lengths: range) -> None:
        self.lengths = lengths
        self.keys: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for n in lengths:
            terms = [(t, c) for t, c in vocabulary.items() if len(t) == n]
            codes = _code_points("".join(t for t, _ in terms))
            keys = _gram_keys(codes, np.arange(0, len(codes), n), n)  # the terms end to end
            order = np.argsort(keys)
            columns = np.fromiter((c for _, c in terms), dtype=np.int64, count=len(terms))
            self.keys[n] = (keys[order], columns[order])

    def count(self, docs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of every known n-gram in ``docs`` (already preprocessed)."""
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        codes = _code_points("".join(docs))
        row_of = np.repeat(np.arange(len(docs)), lengths)
        end_of = np.repeat(np.cumsum(lengths), lengths)  # where each position's text ends
        position = np.arange(len(codes))
        rows, columns = [], []
        for n in self.lengths:
            known_keys, known_columns = self.keys[n]
            if not len(known_keys):
                continue
            start = position[position + n <= end_of]
            key = _gram_keys(codes, start, n)
            at = np.minimum(np.searchsorted(known_keys, key), len(known_keys) - 1)
            hit = known_keys[at] == key
            rows.append(row_of[start[hit]])
            columns.append(known_columns[at[hit]])
        empty = np.zeros(0, dtype=np.int64)
        return (
            np.concatenate(rows) if rows else empty,
            np.concatenate(columns) if columns else empty,
        )


def _gram_keys(codes: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """The key of the n code points from each of ``starts``."""
    key: np.ndarray = codes[starts]
    for k in range(1, n):
        key = (key << np.uint64(_CODE_BITS)) | codes[starts + k]
    return key


def _code_points(text: str) -> np.ndarray:
    # surrogatepass: a lone surrogate (possible in JSON input) is a code point like any other
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(
        np.uint64
    )


class _BatchTfidf:
    """A fitted ``TfidfVectorizer``'s ``transform``, with the counting done for the whole batch
    at once instead of scikit-learn's per-feature Python loop. Same analyzer, vocabulary, IDF,
    sublinear TF and norm: the same matrix.

    Two ways to count: word features (a callable analyzer) are looked up with ``map`` over
    ``dict.get`` in C; character n-grams (``analyzer="char"``, n ≤ 3) are not made as strings
    at all — ``analyze`` only preprocesses the text as scikit-learn's char analyzer does
    (decode, lowercase, runs of whitespace to one space) and ``_CharKeys`` finds the n-grams."""

    # the settings that decide what the analyzer returns: equal keys, equal features
    _ANALYSIS = (
        "input", "encoding", "decode_error", "strip_accents", "lowercase", "preprocessor",
        "tokenizer", "stop_words", "token_pattern", "ngram_range", "analyzer",
    )  # fmt: skip

    def __init__(self, vectorizer: Any) -> None:
        self.analysis = tuple(repr(getattr(vectorizer, name)) for name in self._ANALYSIS)
        self.vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.idf: np.ndarray = vectorizer.idf_
        self.sublinear: bool = vectorizer.sublinear_tf
        self.norm: str | None = vectorizer.norm
        self.binary: bool = vectorizer.binary
        low, high = vectorizer.ngram_range
        self.chars: _CharKeys | None = None
        if vectorizer.analyzer == "char" and 1 <= low <= high <= 3:
            self.chars = _CharKeys(self.vocabulary, range(low, high + 1))
            decode, preprocess = vectorizer.decode, vectorizer.build_preprocessor()
            white = vectorizer._white_spaces  # the pattern scikit-learn's char n-grams use

            def prepared(text: str) -> str:
                return str(white.sub(" ", preprocess(decode(text))))

            self.analyze: Callable[[str], Any] = prepared
        else:
            self.analyze = vectorizer.build_analyzer()

    def transform(self, docs: Sequence[Any]) -> sp.csr_matrix:
        """``docs``: each text as ``analyze`` returned it (its features, or for characters
        the preprocessed text)."""
        from sklearn.preprocessing import normalize

        if self.chars is not None:
            rows, columns = self.chars.count(docs)
            values = np.ones(len(rows))
        else:
            flat = list(chain.from_iterable(docs))
            found = np.fromiter(
                map(self.vocabulary.get, flat, repeat(-1)), dtype=np.int64, count=len(flat)
            )
            per_text = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
            known = found >= 0
            rows, columns = np.repeat(np.arange(len(docs)), per_text)[known], found[known]
            values = np.ones(int(known.sum()))
        counts = sp.csr_matrix((values, (rows, columns)), shape=(len(docs), len(self.idf)))
        counts.sum_duplicates()  # repeated features of a message add up, as in CountVectorizer
        if self.binary:
            counts.data[:] = 1.0
        if self.sublinear:
            np.log(counts.data, counts.data)
            counts.data += 1.0
        counts.data *= self.idf[counts.indices]
        return normalize(counts, norm=self.norm, copy=False) if self.norm else counts


Analysed = list[list[Any]]  # per feature family, per text: what its ``analyze`` returned


class _Compiled:
    """A fitted ``Pipeline([("features", FeatureUnion of TfidfVectorizers), ("svm", …)])``
    with its features computed by ``_BatchTfidf``; any other shape falls back to the pipeline."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.classes_ = pipeline.classes_
        self.parts: list[_BatchTfidf] = []
        features, self.svm = pipeline.steps[0][1], pipeline.steps[-1][1]
        transformers = getattr(features, "transformer_list", None)
        if (
            len(pipeline.steps) == 2
            and transformers
            and not getattr(features, "transformer_weights", None)
            and all(hasattr(part, "idf_") for _, part in transformers)
        ):
            self.parts = [_BatchTfidf(part) for _, part in transformers]

    @property
    def analysis(self) -> tuple[tuple[str, ...], ...]:
        return tuple(part.analysis for part in self.parts)

    def analyse(self, texts: Sequence[str]) -> Analysed:
        return [[part.analyze(text) for text in texts] for part in self.parts]

    def decision_function(
        self, texts: Sequence[str], analysed: Analysed | None = None
    ) -> np.ndarray:
        """SVM margins; ``analysed`` (this model's ``analyse`` of ``texts``, or another model's
        with the same ``analysis``) saves analysing the texts again."""
        if not self.parts:
            return np.asarray(self.pipeline.decision_function(list(texts)))
        if analysed is None:
            analysed = self.analyse(texts)
        features = sp.hstack(
            [part.transform(docs) for part, docs in zip(self.parts, analysed, strict=True)],
            format="csr",
        )
        return np.asarray(self.svm.decision_function(features))


_compiled_models: weakref.WeakKeyDictionary[Model, tuple[_Compiled, _Compiled]] = (
    weakref.WeakKeyDictionary()
)


def _compiled(model: Model) -> tuple[_Compiled, _Compiled]:
    pair = _compiled_models.get(model)
    if pair is None:
        pair = _compiled_models[model] = (_Compiled(model.six), _Compiled(model.polarity))
    return pair


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
        for i, labelled in zip(rest, _model_labels(model, batch), strict=True):
            out[i] = labelled
    return out


def _model_labels(model: Model, batch: list[str]) -> list[Labelled]:
    six, polarity = _compiled(model)
    analysed = six.analyse(batch)
    best, scores = _softmax_top(six.decision_function(batch, analysed))
    classes = list(six.classes_)
    labels = [str(classes[b]) for b in best]
    polar_rows = [k for k, label in enumerate(labels) if label in POLAR]
    if polar_rows:
        shared = None  # both models analyse text alike (they do as trained): analyse it once
        if six.parts and six.analysis == polarity.analysis:
            shared = [[docs[k] for k in polar_rows] for docs in analysed]
        margins = polarity.decision_function([batch[k] for k in polar_rows], shared)
        for k, label in zip(polar_rows, _polar_labels(polarity, margins), strict=True):
            labels[k] = label
    return [
        Labelled(label, round(float(score), 4)) for label, score in zip(labels, scores, strict=True)
    ]


def polarity_of(model: Model, texts: Sequence[str]) -> list[str]:
    """Complaint or praise only (the check on public product reviews)."""
    _, polarity = _compiled(model)
    return _polar_labels(polarity, polarity.decision_function(texts))


def _polar_labels(polarity: _Compiled, margins: np.ndarray) -> list[str]:
    negative, positive = (str(label) for label in polarity.classes_)
    return [positive if m > 0 else negative for m in margins]


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
