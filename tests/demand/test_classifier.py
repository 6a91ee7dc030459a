"""The message classifier: rules catch contact details and links; the shipped model is the one
the training code makes from the corpus, and is good on the corpus's held-out split (loosely
asserted so a broken model fails); the complaint/praise recipe holds on real product reviews;
`shequn demand classify` keeps its JSON-lines contract."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from shequn.demand import training
from shequn.demand.classifier import (
    LABELS,
    Model,
    _compiled,
    add_terms,
    classify,
    predict,
    rule_label,
    shipped_model,
    words,
)

PUBLIC_REVIEWS = Path(
    os.environ.get(
        "SHEQUN_PUBLIC_REVIEWS",
        Path(__file__).resolve().parents[3] / "shared" / "data" / "online_shopping_10_cats.csv",
    )
)


@pytest.mark.parametrize(
    "text",
    [
        "加我vx：abc12345 兼职日结",
        "想赚零花钱的加 V 信 happy888",
        "有需要的联系 138 1234 5678",
        "代购正品 点这里 www.daigou-shop.cn",
        "薇信: mama_2024 低价奶粉",
        "进群领福利 https://t.cn/abc",
    ],
)
def test_contact_details_and_links_are_ads_by_rule(text: str) -> None:
    assert rule_label(text) == "ad"
    (result,) = classify([text])
    assert (result.label, result.score, result.by_rule) == ("ad", 1.0, True)


@pytest.mark.parametrize(
    "text",
    ["可以用微信支付吗", "我加了群主微信了", "订单号 2026112412345678 还没发货", "明天13点提货"],
)
def test_ordinary_messages_are_left_to_the_model(text: str) -> None:
    assert rule_label(text) is None


def test_the_shipped_model_is_what_the_training_code_makes_and_it_is_good() -> None:
    corpus = training.load_corpus()
    heldout = [e for e in corpus if e.heldout]
    assert len(heldout) > 900
    assert {e.label for e in heldout} == set(LABELS)
    shipped = training.evaluate(shipped_model(), corpus)
    assert shipped.macro_f1 >= 0.85, shipped.report
    retrained = training.train(corpus)
    texts = [e.text for e in heldout]
    assert [r.label for r in training.predict(retrained, texts)] == [
        r.label for r in classify(texts)
    ], (
        "model/demand.joblib is stale: run `shequn demand train --out src/shequn/demand/model/demand.joblib`"
    )


ODD_TEXTS = [
    "",
    "   ",
    "好好好好好好",  # the same n-grams many times over
    "AbC 大写  和   空白\n换行\t制表",
    "🍓🍓 草莓 😡",
    "𠮷野家 ｆｕｌｌｗｉｄｔｈ ①②",
    "鸡蛋很新鲜，下次还买",
    "a",  # shorter than a bigram
    "x\x00y\r\n\r\n z",  # NUL, and a run of mixed whitespace
    "孤\ud800单",  # a lone surrogate (JSON input may carry one)
    "ÀÉÎ ǅ İ",  # lower-casing that changes length: İ becomes two code points
]


def test_batch_features_are_scikit_learns_own() -> None:
    """The classifier counts a batch's features itself (character n-grams as integer keys, words
    by dictionary lookups); the matrix and margins must be what the fitted pipeline's
    ``transform`` and ``decision_function`` give."""
    model = shipped_model()
    texts = [e.text for e in training.load_corpus()][:600] + ODD_TEXTS
    for compiled, pipeline in zip(_compiled(model), (model.six, model.polarity), strict=True):
        assert compiled.parts, "the shipped pipelines are compiled, not run through the fallback"
        assert [part.chars is not None for part in compiled.parts] == [True, False]
        ours = compiled.decision_function(texts)
        assert np.allclose(ours, pipeline.decision_function(texts), rtol=0, atol=1e-9)
        union = pipeline.steps[0][1]
        for part, (_, vectorizer) in zip(compiled.parts, union.transformer_list, strict=True):
            expected = vectorizer.transform(texts)
            got = part.transform([part.analyze(text) for text in texts])
            assert got.shape == expected.shape
            assert abs(got - expected).max() < 1e-12
            assert (got != 0).sum() == (expected != 0).sum()


def test_any_other_pipeline_shape_runs_through_scikit_learn() -> None:
    corpus = training.load_corpus()[::4]
    polar = [e for e in corpus if e.label in ("complaint", "praise")]

    def plain(rows: list[training.Example]) -> Any:
        pipeline = make_pipeline(TfidfVectorizer(analyzer="char"), LinearSVC(random_state=0))
        return pipeline.fit([e.text for e in rows], [e.label for e in rows])

    model = Model(six=plain(corpus), polarity=plain(polar))
    texts = [e.text for e in corpus[:80]] + ODD_TEXTS
    for compiled, pipeline in zip(_compiled(model), (model.six, model.polarity), strict=True):
        assert not compiled.parts
        assert np.array_equal(compiled.decision_function(texts), pipeline.decision_function(texts))
    assert {r.label for r in predict(model, texts)} <= set(LABELS)


def test_catalog_terms_join_the_dictionary() -> None:
    assert "艾叶暖足贴" not in words("想要艾叶暖足贴的小包装")
    add_terms(["艾叶暖足贴"])
    assert "艾叶暖足贴" in words("想要艾叶暖足贴的小包装")


@pytest.mark.skipif(not PUBLIC_REVIEWS.is_file(), reason=f"public reviews not at {PUBLIC_REVIEWS}")
def test_complaint_and_praise_hold_on_real_product_reviews() -> None:
    reviews = training.load_reviews(PUBLIC_REVIEWS)
    random.Random(7).shuffle(reviews)
    train_part, check = reviews[:12_000], reviews[-3_000:]
    shipped = training.polarity_accuracy(shipped_model(), check)
    assert shipped >= 0.70  # never saw a review: product-chat polarity carries over
    corpus = training.load_corpus()
    recipe = training.train(corpus, polarity_extra=train_part)
    assert training.polarity_accuracy(recipe, check) >= 0.88
    assert training.evaluate(recipe, corpus).macro_f1 >= 0.85  # and still holds on group chat


def run_classify(stdin: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(
        [sys.executable, "-m", "shequn.cli", "demand", "classify"],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_classify_command_answers_one_line_per_input_in_order() -> None:
    inputs = [
        {"id": 1, "text": "要是有小包装的艾灸贴就好了"},
        {"id": "b", "text": "加我vx：abc12345 兼职日结"},
        {"id": [3], "text": "昨天买的草莓一半是烂的，太失望了"},
        {"id": None, "text": "鸡蛋很新鲜，下次还买"},
    ]
    done = run_classify("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in inputs))
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["id"] for a in answers] == [row["id"] for row in inputs]
    assert [a["label"] for a in answers] == ["need", "ad", "complaint", "praise"]
    assert all(set(a) == {"id", "label", "score"} and 0 < a["score"] <= 1 for a in answers)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not json", "不是合法的 JSON"),
        ('{"text": "缺 id"}', "须为"),
        ('{"id": 1, "text": 5}', "须为"),
    ],
)
def test_a_bad_line_is_named_and_the_run_fails(bad: str, reason: str) -> None:
    done = run_classify('{"id": 1, "text": "好"}\n' + bad + "\n")
    assert done.returncode == 2
    assert "第 2 行" in done.stderr
    assert reason in done.stderr
    assert len(done.stdout.splitlines()) == 1  # the line before it was answered


def run_classify_bytes(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """``run_classify`` fed raw bytes, as another tool's pipe may be."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(
        [sys.executable, "-m", "shequn.cli", "demand", "classify"],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


DEEP_ID = '{"id": ' + "[" * 5000 + "]" * 5000 + ', "text": "好"}'


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"[" * 100_000, "嵌套过深"),  # RecursionError in the JSON parser
        (DEEP_ID.encode(), "嵌套过深"),  # well-formed, but no parser should go that deep
        (b'{"id": 2, "text": "\xff\xfe \xe5\xa5"}', "不是 UTF-8 编码的文本"),
        (b'{"id": "\\ud800", "text": "x"}', "无法编码"),  # an id no UTF-8 answer can carry
        (b'{"id": ' + b"1" * 5000 + b', "text": "x"}', "不是合法的 JSON"),  # past int digits
    ],
    ids=["deep-array", "deep-id", "not-utf8", "lone-surrogate-id", "huge-number"],
)
def test_any_bad_line_is_named_on_one_line_with_exit_2(bad: bytes, reason: str) -> None:
    done = run_classify_bytes(
        b'{"id": 1, "text": "\xe5\xa5\xbd"}\n' + bad + b'\n{"id": 3, "text": "x"}\n'
    )
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert stderr.startswith("shequn: 第 2 行: ")
    assert reason in stderr
    assert stderr.count("\n") == 1  # one line
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == [1]


def test_utf8_bytes_on_stdin_are_answered_as_before() -> None:
    inputs = [
        {"id": 1, "text": "要是有小包装的艾灸贴就好了"},
        {"id": {"k": ["深", 2]}, "text": "鸡蛋很新鲜，下次还买"},
    ]
    data = "".join(json.dumps(row, ensure_ascii=False) + "\r\n" for row in inputs).encode()
    done = run_classify_bytes(data + b"\n")
    assert done.returncode == 0, done.stderr.decode()
    answers = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [a["id"] for a in answers] == [row["id"] for row in inputs]
    assert [a["label"] for a in answers] == ["need", "praise"]
    first = done.stdout.decode().splitlines()[0]
    assert first == json.dumps(answers[0], ensure_ascii=False)  # the same bytes as before
