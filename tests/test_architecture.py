"""The app layers hold for the database schema too: a model may point only at models of its own
app or of apps below it (the same layers import-linter holds for imports, read from
pyproject.toml). String foreign keys are resolved by Django, so they count."""

from __future__ import annotations

import tomllib
from pathlib import Path

from django.apps import apps

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# Today's upward relations, each to be reversed by a migration that keeps data
# (docs/architecture-graph.md §5, cut 12). The list may only shrink: a line that no longer
# matches fails the test.
KNOWN_UPWARD = {
    "promotions.GroupBuySeat.order → orders.Order",
    "promotions.GroupBuySeat.refund → orders.Refund",
    "promotions.Coupon.order → orders.Order",
    "promotions.InstantDiscountUse.order → orders.Order",
}


def layer_ranks() -> dict[str, int]:
    """{"console": 0, "shop": 1, …}: the app's layer, top first; siblings share a rank."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers")
    ranks: dict[str, int] = {}
    for rank, layer in enumerate(contract["layers"]):
        for module in layer.strip("()").split("|"):
            ranks[module.strip().removeprefix("shequn.")] = rank
    return ranks


def upward_relations() -> set[str]:
    ranks = layer_ranks()
    found = set()
    for model in apps.get_models():
        source = model._meta.app_label
        if source not in ranks:
            continue
        for field in model._meta.get_fields():
            target_model = field.related_model
            if not field.is_relation or field.auto_created or target_model is None:
                continue
            target = target_model._meta.app_label
            if target in ranks and target != source and ranks[target] <= ranks[source]:
                found.add(f"{model._meta.label}.{field.name} → {target_model._meta.label}")
    return found


def test_every_app_is_in_a_layer() -> None:
    ranks = layer_ranks()
    ours = {c.label for c in apps.get_app_configs() if c.name.startswith("shequn.")}
    assert ours <= set(ranks), ours - set(ranks)


def test_model_relations_point_down() -> None:
    found = upward_relations()
    assert found - KNOWN_UPWARD == set(), "a model points up the layers"
    assert KNOWN_UPWARD - found == set(), "reversed: take it off KNOWN_UPWARD"
