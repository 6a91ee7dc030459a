"""The demand board: needs and complaints join topics (product, else category, else keyword, ×
aspect) as they are labelled; counts are of distinct members, groups and stores; HQ renames and
merges (later mentions follow the merge); a supplier sees only its own categories' topics; only
members who consented to chat analysis are heard there (``member`` here is one who did)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shequn.catalog import actions as catalog
from shequn.catalog.models import Product
from shequn.core import timeutil
from shequn.demand.actions import classify_pending
from shequn.demand.ingest import MessageRow, epoch_us, store_rows
from shequn.demand.models import Complaint, Message, ModerationCase, Topic, TopicMention
from shequn.demand.proposals import source_groups
from shequn.demand.queries import visible_topics
from shequn.demand.topics import board, merge_topics, rename_topic
from shequn.members.actions import set_consent
from shequn.members.models import Member
from tests.conftest import Chain, client_for, make_group
from tests.referrals.test_commission_lifecycle import member as not_asked

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(chain: Chain) -> dict[str, Any]:
    moxa_maker = catalog.create_supplier(acting=chain.admin, name="艾草供应商")
    farm = catalog.create_supplier(acting=chain.admin, name="农场")
    health = catalog.get_or_create_category(acting=chain.admin, name="养生")
    fresh = catalog.get_or_create_category(acting=chain.admin, name="生鲜")
    moxa = catalog.create_product(
        acting=chain.admin, supplier=moxa_maker, name="艾草暖宫贴 10贴/盒"
    )
    eggs = catalog.create_product(acting=chain.admin, supplier=farm, name="土鸡蛋 30枚")
    Product.objects.filter(pk=moxa.pk).update(category=health)
    Product.objects.filter(pk=eggs.pk).update(category=fresh)
    moxa_maker.accounts.add(chain.supplier.user)
    return {
        "moxa": moxa,
        "eggs": eggs,
        "group_a": make_group(chain.manager_a, chain.store_a, name="A店宝妈群"),
        "group_a2": make_group(chain.manager_a, chain.store_a, name="A店团购群"),
        "group_b": make_group(chain.manager_b, chain.store_b, name="B店群"),
    }


def member(chain: Chain, n: int, store: Any = None) -> Member:
    """A member who consented to chat analysis (PIPL: the board hears no one else)."""
    person = not_asked(chain, n, store)
    set_consent(member=person, purpose="chat_analysis", granted=True)
    return person


def say(chain: Chain, group: Any, key: str, who: Any, text: str) -> None:
    now = epoch_us(timeutil.now())
    store_rows(
        [MessageRow(chain.hq.pk, group.pk, "wecom", key, who.pk, None, "", now, "text", text)]
    )


def test_needs_gather_by_product_and_aspect_counting_members_once(
    chain: Chain, shop: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    alice, bob, carol = member(chain, 1), member(chain, 2), member(chain, 3, chain.store_b)
    say(chain, shop["group_a"], "1", alice, "要是有小包装的艾草暖宫贴就好了")
    say(chain, shop["group_a2"], "2", alice, "艾草暖宫贴能不能出个小包装的，一盒太多了")
    say(chain, shop["group_b"], "3", bob, "希望艾草暖宫贴出小包装，出差带着方便")
    say(chain, shop["group_b"], "4", carol, "昨天买的土鸡蛋送来碎了好几个，太失望了")
    say(chain, shop["group_a"], "5", bob, "今天天气真好")
    classify_pending()
    classify_pending()
    with django_assert_max_num_queries(6):  # the ranking, then five for all cards together
        cards = {card.topic.title: card for card in board(Topic.objects.all())}
    assert len(cards) == 2
    moxa = cards["艾草暖宫贴 10贴/盒 · 包装/规格"]
    assert (moxa.members, moxa.groups, moxa.stores, moxa.needs) == (2, 3, 2, 2)
    assert moxa.topic.product_id == shop["moxa"].pk
    assert len(moxa.quotes) == 2  # one quote per member
    assert moxa.weekly[-1][1] == 2
    assert moxa.aspects[0] == "包装/规格"
    eggs = cards["土鸡蛋 30枚 · 质量"]
    assert (eggs.members, eggs.complaints) == (1, 1)
    assert TopicMention.objects.count() == 4  # chit-chat joins nothing
    assert list(board(Topic.objects.all()))[0].topic == moxa.topic  # most voices first


def test_hq_merges_and_renames_and_later_mentions_follow(
    chain: Chain, shop: dict[str, Any]
) -> None:
    alice, bob = member(chain, 1), member(chain, 2)
    say(chain, shop["group_a"], "1", alice, "希望艾草暖宫贴能便宜一点")
    say(chain, shop["group_a"], "2", bob, "要是有小包装的艾草暖宫贴就好了")
    classify_pending()
    price = Topic.objects.get(aspect="price")
    packaging = Topic.objects.get(aspect="packaging")
    merged = merge_topics(acting=chain.hq_operator, source=price, target=packaging)
    renamed = rename_topic(acting=chain.hq_operator, topic=merged, title="艾草暖宫贴: 小包装更便宜")
    assert TopicMention.objects.filter(topic=renamed).count() == 2
    say(chain, shop["group_a"], "3", member(chain, 3), "艾草暖宫贴价格要是能再优惠点就好了")
    classify_pending()
    assert TopicMention.objects.filter(topic=renamed).count() == 3  # followed the merge
    (card,) = board(Topic.objects.all())
    assert (card.topic.title, card.members) == ("艾草暖宫贴: 小包装更便宜", 3)
    api = client_for(chain.hq_operator)
    bad = api.patch(
        f"/api/demand/topics/{renamed.pk}", json.dumps({"title": ""}), "application/json"
    )
    assert bad.status_code == 422
    again = api.patch(
        f"/api/demand/topics/{renamed.pk}",
        json.dumps({"merge_into": renamed.pk}),
        "application/json",
    )
    assert (again.status_code, again.json()["code"]) == (422, "merge_into_self")


def test_a_supplier_sees_only_its_own_categories(chain: Chain, shop: dict[str, Any]) -> None:
    say(chain, shop["group_a"], "1", member(chain, 1), "要是有小包装的艾草暖宫贴就好了")
    say(
        chain,
        shop["group_b"],
        "2",
        member(chain, 2, chain.store_b),
        "土鸡蛋送来碎了好几个，太失望了",
    )
    classify_pending()
    assert {t.title for t in visible_topics(chain.supplier)} == {"艾草暖宫贴 10贴/盒 · 包装/规格"}
    assert visible_topics(chain.manager_a).count() == 0
    page = client_for(chain.supplier).get("/demand/").content.decode()
    assert "艾草暖宫贴" in page
    assert "土鸡蛋" not in page
    assert 'name="merge_into"' not in page  # suppliers read, HQ edits
    topics = client_for(chain.supplier).get("/api/demand/topics").json()
    assert [t["title"] for t in topics] == ["艾草暖宫贴 10贴/盒 · 包装/规格"]
    eggs = Topic.objects.get(product=shop["eggs"])
    hidden = client_for(chain.supplier).patch(
        f"/api/demand/topics/{eggs.pk}", json.dumps({"title": "x"}), "application/json"
    )
    assert hidden.status_code == 404
    hq = client_for(chain.hq_operator).get("/demand/").content.decode()
    assert "土鸡蛋" in hq
    assert 'name="merge_into"' in hq


def test_without_consent_to_chat_analysis_a_member_is_never_on_the_board(
    chain: Chain, shop: dict[str, Any]
) -> None:
    """Not consenting (the default): the messages are stored and labelled, an ad still opens a
    moderation case and a complaint still reaches the 投诉 feed (running the group and answering
    a customer who complained in it are not analysis), but nothing of theirs joins a topic, is
    quoted or is counted — on the board, in the API or on the console page."""
    alice, dave = member(chain, 1), not_asked(chain, 4)
    say(chain, shop["group_a"], "1", alice, "要是有小包装的艾草暖宫贴就好了")
    say(chain, shop["group_a"], "2", dave, "艾草暖宫贴能不能出个小包装的，一盒太多了")
    say(chain, shop["group_b"], "3", dave, "昨天买的土鸡蛋送来碎了好几个，太失望了")
    say(chain, shop["group_b"], "4", dave, "兼职日结, 在家就能做, 加我vx: job8888")
    classify_pending()
    labels = dict(
        Message.objects.filter(sender_member=dave).values_list("platform_msg_id", "label")
    )
    assert labels == {"2": "need", "3": "complaint", "4": "ad"}
    assert Complaint.objects.filter(member=dave).count() == 1
    assert ModerationCase.objects.filter(member=dave).count() == 1
    assert not TopicMention.objects.filter(member=dave).exists()
    (card,) = board(Topic.objects.all())
    assert (card.members, card.groups, card.needs, card.complaints) == (1, 1, 1, 0)
    assert card.quotes == ["要是有小包装的艾草暖宫贴就好了"]
    topics = client_for(chain.hq_operator).get("/api/demand/topics").json()
    assert [(t["members"], t["quotes"]) for t in topics] == [(1, card.quotes)]
    page = client_for(chain.hq_operator).get("/demand/").content.decode()
    assert "一盒太多了" not in page
    assert "土鸡蛋" not in page


def test_a_withdrawn_consent_takes_the_member_off_the_board_at_once(
    chain: Chain, shop: dict[str, Any]
) -> None:
    alice, bob = member(chain, 1), member(chain, 2, chain.store_b)
    say(chain, shop["group_a"], "1", alice, "要是有小包装的艾草暖宫贴就好了")
    say(chain, shop["group_b"], "2", bob, "希望艾草暖宫贴出小包装，出差带着方便")
    classify_pending()
    (card,) = board(Topic.objects.all())
    assert (card.members, card.stores, len(card.quotes)) == (2, 2, 2)
    set_consent(member=bob, purpose="chat_analysis", granted=False)
    (card,) = board(Topic.objects.all())
    assert (card.members, card.groups, card.stores, card.needs) == (1, 1, 1, 1)
    assert card.quotes == ["要是有小包装的艾草暖宫贴就好了"]
    assert sum(n for _, n in card.weekly) == 1
    assert source_groups(card.topic) == [shop["group_a"].pk]  # a proposal goes where voices are
    say(chain, shop["group_b"], "3", bob, "艾草暖宫贴小包装什么时候有")
    classify_pending()
    assert not TopicMention.objects.filter(message__platform_msg_id="3").exists()
    set_consent(member=alice, purpose="chat_analysis", granted=False)
    assert board(Topic.objects.all()) == []  # nobody left who may be heard
