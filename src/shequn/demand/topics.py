"""Needs and complaints gathered into topics (the demand board).

Each labelled need or complaint is read once:

1. **linked** to the catalog — the product whose name (or the category whose name) it mentions,
   the longest match winning; the chain's product and category names are in the segmentation
   dictionary, so "艾草暖宫贴" is one word;
2. **aspects** named — 价格, 质量, 口味, 包装/规格, 功效, 物流/提货, 服务 — from a small lexicon
   (the first one named is the topic's aspect; all are kept on the mention);
3. **joined** to the topic of (that product, else category, else its most telling noun) × that
   aspect: made on first use, so topics grow incrementally as messages arrive. A topic HQ
   merged away passes its new mentions on to the one it was merged into.

Counts on the board are of distinct members (and groups and stores), never of messages: one
member repeating themselves ten times is one voice.

Only members who consented to chat analysis (``Member.consent_chat_analysis``, PIPL art. 13-14)
are heard: another member's message is stored and labelled (an ad is still moderated, a
complaint still an alert) but joins no topic; and a withdrawal takes the member's earlier
mentions off every count, quote and source group at once (``with_consent``), as it is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from shequn.catalog.models import Category, Product
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import InvalidInput, NotFound
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm

from .classifier import USER_DICT, add_terms, words
from .models import AnchorKind, Aspect, Message, MessageLabel, Topic, TopicMention

DEMAND_LABELS = (MessageLabel.NEED, MessageLabel.COMPLAINT)

ASPECT_WORDS: dict[str, tuple[str, ...]] = {
    Aspect.PRICE: ("价格", "贵", "便宜", "涨价", "划算", "性价比", "优惠", "折扣", "降价", "价钱"),
    Aspect.QUALITY: (
        "质量",
        "坏",
        "烂",
        "破",
        "漏",
        "发霉",
        "变质",
        "过期",
        "臭",
        "异物",
        "不新鲜",
        "蔫",
        "次品",
        "碎",
        "瑕疵",
        "掉色",
        "起球",
        "断",
    ),
    Aspect.TASTE: (
        "味道",
        "口味",
        "口感",
        "甜",
        "咸",
        "辣",
        "酸",
        "苦",
        "腥",
        "好吃",
        "难吃",
        "无糖",
        "低糖",
        "低盐",
        "低脂",
        "无烟",
    ),
    Aspect.PACKAGING: (
        "包装",
        "小包装",
        "大包装",
        "独立包装",
        "家庭装",
        "分装",
        "规格",
        "尺寸",
        "大小",
        "小号",
        "大号",
        "容量",
        "一盒",
        "一袋",
        "一箱",
        "盒装",
        "袋装",
        "小盒",
        "小袋",
        "克",
    ),
    Aspect.EFFECT: ("效果", "功效", "管用", "没用", "有用", "见效", "过敏", "舒服", "不舒服"),
    Aspect.PICKUP: (
        "提货",
        "自提",
        "配送",
        "送货",
        "送到",
        "快递",
        "物流",
        "排队",
        "到货",
        "发货",
        "取货",
        "上门",
        "晚上",
        "周末",
    ),
    Aspect.SERVICE: (
        "态度",
        "服务",
        "店员",
        "客服",
        "退款",
        "退货",
        "换货",
        "售后",
        "回复",
        "理人",
    ),
}
# Words too common to stand for a topic on their own.
STOPWORDS = frozenset(
    [
        "我们",
        "你们",
        "他们",
        "大家",
        "这个",
        "那个",
        "就是",
        "还是",
        "可以",
        "能不能",
        "有没有",
        "希望",
        "要是",
        "如果",
        "什么",
        "怎么",
        "为什么",
        "一下",
        "一点",
        "东西",
        "时候",
        "现在",
        "今天",
        "昨天",
        "明天",
        "已经",
        "真的",
        "感觉",
        "觉得",
        "没有",
        "不是",
        "一个",
        "店里",
        "群里",
        "老人",
        "孩子",
        "宝宝",
        "家里",
        "上班",
        "下班",
        "买的",
        "买了",
        "好几",
        "太",
        "很",
        "就",
        "都",
        "也",
        "还",
        "又",
        "的",
        "了",
        "吗",
        "呢",
        "吧",
        "啊",
    ]
)
_HAN = re.compile(r"^[\u4e00-\u9fff]{2,8}$")


@dataclass(frozen=True)
class Reading:
    """What one message is about: an anchor (product, category or keyword) and aspects."""

    anchor_kind: str
    product_id: int | None
    category_id: int | None
    keyword: str
    aspects: tuple[str, ...]

    @property
    def anchor_key(self) -> str:
        if self.product_id:
            return f"p:{self.product_id}"
        if self.category_id:
            return f"c:{self.category_id}"
        return f"k:{self.keyword}"

    @property
    def aspect(self) -> str:
        return self.aspects[0] if self.aspects else Aspect.OTHER


@dataclass(frozen=True)
class Catalog:
    """The chain's product and category names, longest first (the longest match wins)."""

    products: Sequence[tuple[str, int, int | None]]  # (name, product id, category id)
    categories: Sequence[tuple[str, int]]

    @classmethod
    def of_chain(cls, chain_id: int) -> Catalog:
        products = []
        for pk, name, category in Product.objects.filter(chain_id=chain_id).values_list(
            "pk", "name", "category_id"
        ):
            for term in _product_terms(name):
                products.append((term, pk, category))
        categories = list(Category.objects.filter(chain_id=chain_id).values_list("name", "pk"))
        add_terms([t for t, *_ in products] + [name for name, _ in categories])
        return cls(
            sorted(products, key=lambda p: -len(p[0])), sorted(categories, key=lambda c: -len(c[0]))
        )


def _product_terms(name: str) -> list[str]:
    """A product's name and its core ("艾草暖宫贴 10贴/盒" → that, and "艾草暖宫贴")."""
    core = re.split(r"[\s(（/·,，0-9]", name.strip(), maxsplit=1)[0]
    return [t for t in dict.fromkeys([name.strip(), core]) if len(t) >= 2]


def read_message(text: str, catalog: Catalog) -> Reading:
    tokens = words(text)
    plain = [t for t in tokens if "_" not in t]
    aspects = tuple(
        aspect for aspect, cues in ASPECT_WORDS.items() if any(cue in text for cue in cues)
    )
    for term, product_id, category_id in catalog.products:
        if term in text:
            return Reading(AnchorKind.PRODUCT, product_id, category_id, "", aspects)
    for name, category_id in catalog.categories:
        if name in text:
            return Reading(AnchorKind.CATEGORY, None, category_id, "", aspects)
    known = [t for t in plain if t in retail_terms()]  # the retail dictionary's words first
    cue_words = {cue for cues in ASPECT_WORDS.values() for cue in cues}
    nouns = [t for t in plain if _HAN.match(t) and t not in STOPWORDS and t not in cue_words]
    keyword = known[0] if known else max(nouns, key=len) if nouns else "其他"
    return Reading(AnchorKind.KEYWORD, None, None, keyword[:30], aspects)


@cache
def retail_terms() -> frozenset[str]:
    """The words of the shipped retail dictionary (提货, 退款, 小包装 …)."""
    if not USER_DICT.exists():
        return frozenset()
    lines = USER_DICT.read_text(encoding="utf-8").splitlines()
    return frozenset(line.split()[0] for line in lines if line.strip())


def _title(reading: Reading) -> str:
    if reading.product_id:
        subject = Product.objects.values_list("name", flat=True).get(pk=reading.product_id)
    elif reading.category_id:
        subject = Category.objects.values_list("name", flat=True).get(pk=reading.category_id)
    else:
        subject = reading.keyword
    return f"{subject[:40]} · {Aspect(reading.aspect).label}"


def _topic_for(chain_id: int, reading: Reading) -> Topic:
    found = Topic.objects.filter(
        chain_id=chain_id, anchor_key=reading.anchor_key, aspect=reading.aspect
    ).first()
    if found is None:
        try:
            with transaction.atomic():
                found = Topic.objects.create(
                    chain_id=chain_id,
                    title=_title(reading),
                    anchor_kind=reading.anchor_kind,
                    product_id=reading.product_id,
                    category_id=reading.category_id,
                    keyword=reading.keyword,
                    anchor_key=reading.anchor_key,
                    aspect=reading.aspect,
                )
        except IntegrityError:  # made at the same moment by another sweep
            found = Topic.objects.get(
                chain_id=chain_id, anchor_key=reading.anchor_key, aspect=reading.aspect
            )
    seen: set[int] = set()
    while found.merged_into_id is not None and found.pk not in seen:  # follow merges
        seen.add(found.pk)
        found = Topic.objects.get(pk=found.merged_into_id)
    return found


def with_consent(mentions: QuerySet[TopicMention]) -> QuerySet[TopicMention]:
    """The mentions whose member consents to chat analysis now: the only ones any count, quote
    or source group may read (a withdrawal hides the earlier ones at once)."""
    return mentions.filter(member__consent_chat_analysis=True)


def gather(message_ids: Iterable[int]) -> int:
    """Put the needs and complaints among ``message_ids`` into their topics (once each), of
    members who consent to chat analysis only: without it a message is not analysed further."""
    demand = list(
        Message.objects.filter(
            pk__in=list(message_ids),
            label__in=DEMAND_LABELS,
            sender_member__isnull=False,
            sender_member__consent_chat_analysis=True,
        )
        .exclude(mention__isnull=False)
        .select_related("group")
    )
    catalogs: dict[int, Catalog] = {}
    made = []
    for message in demand:
        catalog = catalogs.get(message.chain_id) or catalogs.setdefault(
            message.chain_id, Catalog.of_chain(message.chain_id)
        )
        reading = read_message(message.content, catalog)
        made.append(
            TopicMention(
                topic=_topic_for(message.chain_id, reading),
                message=message,
                member_id=message.sender_member_id,
                group_id=message.group_id,
                store_id=message.group.store_id,
                label=message.label,
                aspects=",".join(reading.aspects),
                sent_at=message.sent_at,
            )
        )
    TopicMention.objects.bulk_create(made, ignore_conflicts=True)
    return len(made)


# --- HQ's hands on the board ----------------------------------------------------------------------
def rename_topic(*, acting: Staff, topic: Topic, title: str) -> Topic:
    require_perm(acting, Perm.MANAGE_DEMAND)
    title = (title or "").strip()
    if not 1 <= len(title) <= 60:
        raise InvalidInput("主题名称为 1-60 个字", code="invalid_title")
    with transaction.atomic():
        old = topic.title
        Topic.objects.filter(pk=topic.pk).update(title=title)
        record_audit(
            acting.user,
            "demand.topic_renamed",
            target=topic,
            scope_path=acting.node.path,
            details={"from": old, "to": title},
        )
    topic.refresh_from_db()
    return topic


def merge_topics(*, acting: Staff, source: Topic, target: Topic) -> Topic:
    """``source``'s mentions move into ``target``, and so do its future ones."""
    require_perm(acting, Perm.MANAGE_DEMAND)
    if source.pk == target.pk:
        raise InvalidInput("不能把主题合并到自己", code="merge_into_self")
    if source.chain_id != target.chain_id or target.merged_into_id is not None:
        raise NotFound("目标主题不存在")
    with transaction.atomic():
        moved = TopicMention.objects.filter(topic=source).update(topic=target)
        Topic.objects.filter(merged_into=source).update(merged_into=target)
        Topic.objects.filter(pk=source.pk).update(merged_into=target)
        record_audit(
            acting.user,
            "demand.topic_merged",
            target=target,
            scope_path=acting.node.path,
            details={"source": source.pk, "title": source.title, "mentions": moved},
        )
    target.refresh_from_db()
    return target


# --- the board --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopicCard:
    topic: Topic
    members: int
    groups: int
    stores: int
    needs: int  # distinct members who asked
    complaints: int  # distinct members who complained
    last_at: datetime | None
    weekly: list[tuple[str, int]]  # (week label, distinct members), oldest first
    aspects: list[str]
    quotes: list[str]


WEEKS = 8


def board(
    topics: QuerySet[Topic], *, limit: int = 30, now: datetime | None = None
) -> list[TopicCard]:
    """The topics in ``topics`` (already scoped), by distinct consenting members, each with its
    numbers; a topic nobody may be heard in is not on the board."""
    consenting = Q(mentions__member__consent_chat_analysis=True)
    ranked = (
        topics.filter(merged_into__isnull=True)
        .annotate(
            voices=Count("mentions__member", distinct=True, filter=consenting),
            last=Max("mentions__sent_at", filter=consenting),
        )
        .filter(voices__gt=0)
        .order_by("-voices", "-last")[:limit]
    )
    return topic_cards(list(ranked), now=now)


def topic_card(topic: Topic, *, now: datetime | None = None) -> TopicCard:
    return topic_cards([topic], now=now)[0]


QUOTE_CANDIDATES = 50  # a topic's surest mentions read for its three quotes


def topic_cards(topics: Sequence[Topic], *, now: datetime | None = None) -> list[TopicCard]:
    """Each topic's numbers: distinct members, groups and stores, who asked and who complained,
    distinct members per week (the last eight), its aspects and three quotes from three
    different members (the classifier's surest first). Five queries for any number of topics
    (the board showed 30 topics with five queries each)."""
    now = now or timeutil.now()
    start = timeutil.to_local(now).date() - timedelta(weeks=WEEKS - 1)
    start -= timedelta(days=start.weekday())
    weeks = [f"{start + timedelta(weeks=w):%m-%d}" for w in range(WEEKS)]
    mentions = with_consent(TopicMention.objects.filter(topic__in=[topic.pk for topic in topics]))
    mentions = mentions.order_by()
    counts: dict[int, Any] = {
        row["topic"]: row
        for row in mentions.values("topic").annotate(
            members=Count("member", distinct=True),
            groups=Count("group", distinct=True),
            stores=Count("store", distinct=True),
            last=Max("sent_at"),
        )
    }
    per_label: dict[tuple[int, str], int] = {
        (topic_id, label): n
        for topic_id, label, n in mentions.values("topic", "label")
        .annotate(n=Count("member", distinct=True))
        .values_list("topic", "label", "n")
    }
    weekly: dict[tuple[int, str], set[int | None]] = {}
    since = timeutil.local_day_bounds(start)[0]
    for topic_id, member_id, sent_at in mentions.filter(sent_at__gte=since).values_list(
        "topic_id", "member_id", "sent_at"
    ):
        day = timeutil.to_local(sent_at).date()
        week = f"{day - timedelta(days=day.weekday()):%m-%d}"
        weekly.setdefault((topic_id, week), set()).add(member_id)
    aspects: dict[int, dict[str, int]] = {}
    for topic_id, names in mentions.values_list("topic_id", "aspects"):
        tally = aspects.setdefault(topic_id, {})
        for name in filter(None, names.split(",")):
            tally[name] = tally.get(name, 0) + 1
    surest = Window(
        RowNumber(),
        partition_by=[F("topic")],
        order_by=[F("message__label_score").desc(), F("sent_at").desc()],
    )
    candidates = (
        mentions.annotate(rank=surest)
        .filter(rank__lte=QUOTE_CANDIDATES)
        .order_by("topic", "rank")
        .values_list("topic_id", "member_id", "message__content")
    )
    quotes: dict[int, list[str]] = {}
    heard: set[tuple[int, int | None]] = set()
    for topic_id, member_id, content in candidates:
        mine = quotes.setdefault(topic_id, [])
        if (topic_id, member_id) not in heard and len(mine) < 3:
            heard.add((topic_id, member_id))
            mine.append(content)
    cards = []
    for topic in topics:
        found: dict[str, Any] = counts.get(topic.pk, {})
        tally = aspects.get(topic.pk, {})
        cards.append(
            TopicCard(
                topic=topic,
                members=found.get("members", 0),
                groups=found.get("groups", 0),
                stores=found.get("stores", 0),
                needs=per_label.get((topic.pk, MessageLabel.NEED), 0),
                complaints=per_label.get((topic.pk, MessageLabel.COMPLAINT), 0),
                last_at=found.get("last"),
                weekly=[(week, len(weekly.get((topic.pk, week), ()))) for week in weeks],
                aspects=[Aspect(a).label for a, _ in sorted(tally.items(), key=lambda i: -i[1])],
                quotes=quotes.get(topic.pk, []),
            )
        )
    return cards
