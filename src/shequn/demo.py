"""The demo chain: HQ, regions, stores, staff of every role, a group matrix and members.

Deterministic (seeded), realistic Chinese names and valid mainland mobile numbers. Members are
bulk-loaded for speed; a few hundred of them join through the real `join_by_invitation` path,
so the demo's audit log, invitation counters and cashier rewards come from the real code.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.groups import actions as group_actions
from shequn.groups.models import (
    CustomerGroup,
    GroupMembership,
    GroupTheme,
    InvitationKind,
    JoinChannel,
    MembershipRole,
    RecruitmentReward,
)
from shequn.groups.rewards import recruitment_reward_fen
from shequn.members.actions import PhoneProof
from shequn.members.models import Member
from shequn.org import actions as org_actions
from shequn.org.models import NodeKind, OrgNode, Staff
from shequn.org.roles import Role
from shequn.referrals.staff_rewards import book_recruitment_rewards

DEMO_PASSWORD = "shequn-demo-2026"  # noqa: S105 - printed to the newcomer on purpose
DEMO_MCHID, DEMO_APPID = "1900000001", "wxdemo0000000000"  # the simulated merchant

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红鹏辉玲丹建国建华志强晓燕"
    "婷雪梅海燕欣怡子涵雨萱浩然宇轩思琪梓涵佳怡俊杰文博一鸣晨曦诗琪若曦嘉怡颖慧春梅秋菊冬梅"
)
MOBILE_PREFIXES = [
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "182",
    "183",
    "187",
    "188",
    "130",
    "131",
    "132",
    "155",
    "156",
    "185",
    "186",
    "133",
    "153",
    "180",
    "181",
    "189",
    "177",
    "199",
    "166",
    "191",
    "198",
    "176",
]
REGIONS = {
    "华中大区": ["长沙五一广场店", "长沙梅溪湖店", "株洲神农城店", "湘潭万达店"],
    "华南大区": ["广州天河店", "深圳南山店", "佛山千灯湖店", "东莞松山湖店"],
    "华东大区": ["上海徐汇店", "杭州滨江店", "南京河西店", "苏州园区店"],
}
ESTATES = [
    "碧桂园",
    "万科城",
    "保利花园",
    "恒大绿洲",
    "龙湖天街",
    "融创壹号院",
    "金地格林",
    "中海国际",
]
HOBBIES = ["烘焙美食", "广场舞", "亲子阅读", "健康养生", "钓鱼", "茶友会"]
GROUP_RULES = (
    "1. 本群为门店会员服务群, 每周一、三、五有专享活动;\n"
    "2. 禁止发布广告、二维码和外部链接, 违者警告一次后移出;\n"
    "3. 商品与售后问题请直接@群主, 我们会在10分钟内回复。"
)


@dataclass
class DemoSummary:
    chain: OrgNode
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, role, node)
    members: int = 0
    groups: int = 0
    stores: int = 0
    real_joins: int = 0
    orders: int = 0


def _person_name(rng: random.Random) -> str:
    given = GIVEN[rng.randrange(len(GIVEN))]
    if rng.random() < 0.6:
        given += GIVEN[rng.randrange(len(GIVEN))]
    return SURNAMES[rng.randrange(len(SURNAMES))] + given


def _phones(rng: random.Random) -> Iterator[str]:
    seen: set[str] = set()
    while True:
        number = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if number not in seen:
            seen.add(number)
            yield "+86" + number


Progress = Callable[[str, int, int], None]


def _no_progress(step: str, done: int, total: int) -> None:
    return None


def seed_demo(
    *, stores: int = 12, members: int = 5000, seed: int = 2026, progress: Progress = _no_progress
) -> DemoSummary:
    """Load the demo chain into an empty database (refuses to run twice)."""
    if OrgNode.objects.filter(code="demo-hq").exists():
        raise RuntimeError("演示数据已存在; 如需重建请使用 --reset")
    if stores < 1 or members < 0:
        raise ValueError("stores must be >= 1 and members >= 0")
    rng = random.Random(seed)
    phones = _phones(rng)
    with transaction.atomic():
        chain = org_actions.create_chain(name="邻里优选连锁", code="demo-hq")
        summary = DemoSummary(chain=chain)

        def staff(node: OrgNode, role: str, username: str) -> Staff:
            created = org_actions.create_staff(
                acting=None,
                node=node,
                role=role,
                username=username,
                password=DEMO_PASSWORD,
                display_name=_person_name(rng),
                phone=next(phones),
            )
            summary.logins.append((username, Role(role).label, node.name))
            return created

        admin = staff(chain, Role.HQ_ADMIN, "admin")
        staff(chain, Role.HQ_OPERATOR, "hq_ops")
        staff(chain, Role.SUPPLIER, "supplier")
        store_nodes: list[OrgNode] = []
        store_names = [(r, s) for r, names in REGIONS.items() for s in names]
        region_nodes: dict[str, OrgNode] = {}
        for index in range(stores):
            region_name, store_name = store_names[index % len(store_names)]
            if index >= len(store_names):
                store_name = f"{store_name[:-1]}{index // len(store_names) + 1}号店"
            region = region_nodes.get(region_name)
            if region is None:
                region = org_actions.create_node(
                    acting=admin,
                    name=region_name,
                    code=f"demo-r{len(region_nodes) + 1}",
                    kind=NodeKind.REGION,
                    parent=chain,
                )
                region_nodes[region_name] = region
                staff(region, Role.REGION_MANAGER, f"region{len(region_nodes)}")
            store = org_actions.create_node(
                acting=admin,
                name=store_name,
                code=f"demo-s{index + 1:02d}",
                kind=NodeKind.STORE,
                parent=region,
                address=f"{store_name[:2]}市{rng.choice(ESTATES)}旁 {rng.randint(1, 300)} 号",
            )
            store_nodes.append(store)
            n = index + 1
            staff(store, Role.STORE_MANAGER, f"store{n:02d}_manager")
            staff(store, Role.GROUP_OPERATOR, f"store{n:02d}_ops")
            staff(store, Role.CASHIER, f"store{n:02d}_cashier1")
            staff(store, Role.CASHIER, f"store{n:02d}_cashier2")
            progress("门店与员工", index + 1, stores)
        summary.stores = len(store_nodes)

        groups_by_store: dict[int, list[CustomerGroup]] = {}
        for store in store_nodes:
            operator = Staff.objects.get(node=store, role=Role.GROUP_OPERATOR)
            estates = rng.sample(ESTATES, 2)
            specs = [
                (f"{store.name[:-1]}VIP会员群", GroupTheme.VIP),
                (f"{store.name[:-1]}宝妈群", GroupTheme.MOTHERS),
                (f"{estates[0]}邻里群", GroupTheme.HOUSING_ESTATE),
                (f"{estates[1]}邻里群", GroupTheme.HOUSING_ESTATE),
                (f"{rng.choice(HOBBIES)}兴趣群", GroupTheme.HOBBY),
            ]
            groups_by_store[store.pk] = [
                CustomerGroup.objects.create(
                    store=store, name=name, theme=theme, rules=GROUP_RULES, owner=operator.user
                )
                for name, theme in specs
            ]
        summary.groups = sum(len(g) for g in groups_by_store.values())

        # Members: bulk-loaded, each in 1-2 groups of their home store.
        cashiers = {
            s.node_id: [c.user for c in Staff.objects.filter(node=s.node, role=Role.CASHIER)]
            for s in Staff.objects.filter(role=Role.STORE_MANAGER)
        }
        # Four in five consent to chat analysis (the 需求看板 hears only them); by position, not
        # by ``rng``, so the rest of the demo is drawn as before.
        consented_at = timeutil.now()
        member_rows = [
            Member(
                chain=chain,
                phone=next(phones),
                name=_person_name(rng),
                home_store=rng.choice(store_nodes),
                consent_marketing=rng.random() < 0.7,
                consent_chat_analysis=n % 5 != 4,
                consent_chat_analysis_at=consented_at if n % 5 != 4 else None,
            )
            for n in range(members)
        ]
        batch = 1000
        for start in range(0, len(member_rows), batch):
            Member.objects.bulk_create(member_rows[start : start + batch])
            progress("会员", min(start + batch, len(member_rows)), len(member_rows))
        loaded = list(Member.objects.filter(chain=chain).order_by("id"))
        real_join_quota = min(300, len(loaded) // 10)
        bulk_members, real_members = loaded[real_join_quota:], loaded[:real_join_quota]

        memberships: list[GroupMembership] = []
        counts: dict[int, int] = {}
        for member in bulk_members:
            groups = groups_by_store[member.home_store_id]
            for group in rng.sample(groups, 1 if rng.random() < 0.75 else 2):
                if counts.get(group.pk, 0) >= group.capacity - 20:
                    continue
                counts[group.pk] = counts.get(group.pk, 0) + 1
                by_cashier = rng.random() < 0.5
                memberships.append(
                    GroupMembership(
                        group=group,
                        member=member,
                        role=MembershipRole.MEMBER,
                        join_channel=JoinChannel.STAFF_INVITE
                        if by_cashier
                        else JoinChannel.STORE_QR,
                        invited_by_staff=rng.choice(cashiers[group.store_id])
                        if by_cashier
                        else None,
                    )
                )
        for start in range(0, len(memberships), batch):
            GroupMembership.objects.bulk_create(memberships[start : start + batch])
            progress("入群", min(start + batch, len(memberships)), len(memberships))
        ordinals: dict[int, int] = {}
        store_of_group = {g.pk: g.store_id for gs in groups_by_store.values() for g in gs}
        reward_rows = []
        for membership in GroupMembership.objects.filter(group__store__in=store_nodes).order_by(
            "id"
        ):
            ordinals[membership.group_id] = ordinals.get(membership.group_id, 0) + 1
            if membership.invited_by_staff_id is not None:
                reward_rows.append(
                    RecruitmentReward(
                        staff_id=membership.invited_by_staff_id,
                        store_id=store_of_group[membership.group_id],
                        group_id=membership.group_id,
                        member_id=membership.member_id,
                        membership=membership,
                        member_ordinal=ordinals[membership.group_id],
                        amount_fen=recruitment_reward_fen(ordinals[membership.group_id]),
                    )
                )
        RecruitmentReward.objects.bulk_create(reward_rows, batch_size=batch)
        book_recruitment_rewards(  # the cashiers' rewards, in the ledger
            list(
                RecruitmentReward.objects.filter(store__in=store_nodes).select_related(
                    "store", "group", "staff"
                )
            ),
            chain.pk,
        )
        for group_id, count in counts.items():
            CustomerGroup.objects.filter(pk=group_id).update(member_count=count)
        record_audit(None, "demo.seeded", scope_path=chain.path, details={"members": members})

    # A few hundred joins through the real action: cashier codes at the till.
    for index, member in enumerate(real_members):
        store = member.home_store
        cashier = Staff.objects.filter(node=store, role=Role.CASHIER).first()
        if cashier is None:
            continue
        group = rng.choice(groups_by_store[store.pk])
        invitation = group.invitations.filter(
            staff=cashier.user, revoked_at__isnull=True
        ).first() or group_actions.create_invitation(
            acting=cashier, kind=InvitationKind.STAFF, group=group, days=90
        )
        group_actions.join_by_invitation(
            code=group_actions.invitation_code(invitation),
            proof=PhoneProof.vouched(chain.pk, member.phone),
            name=member.name,
        )
        summary.real_joins += 1
        progress("扫码入群", index + 1, len(real_members))
    summary.members = Member.objects.filter(chain=chain).count()
    summary.orders = _seed_catalog_and_orders(
        rng, admin, store_nodes, groups_by_store, orders=min(400, members), progress=progress
    )
    all_groups = [group for groups in groups_by_store.values() for group in groups]
    _seed_group_chat(rng, chain, all_groups)
    progress("群消息与需求", 1, 1)
    supplier_user = Staff.objects.filter(node=chain, role=Role.SUPPLIER).first()
    if supplier_user is not None:  # the demo's supplier login speaks for the first supplier
        from shequn.catalog.models import Supplier

        first = Supplier.objects.filter(chain=chain).order_by("id").first()
        if first is not None:
            first.accounts.add(supplier_user.user)
            _seed_proposal(admin, supplier_user)
    return summary


def _seed_proposal(admin: Staff, supplier: Staff) -> None:
    """A reverse-customization proposal open on the loudest topic the supplier may see, with a
    few paid pre-orders, so 反向定制 and the groups' pages have something to show."""
    from datetime import timedelta

    from shequn.core import timeutil
    from shequn.demand.proposals import draft_proposal, place_preorder, publish_proposal
    from shequn.demand.queries import visible_topics
    from shequn.demand.topics import board
    from shequn.groups.models import GroupMembership

    cards = board(visible_topics(supplier), limit=1)
    if not cards:
        return
    topic = cards[0].topic
    product = topic.product
    name = product.name if product else topic.title.split(" · ")[0]
    price = (
        product.skus.order_by("id").values_list("price_fen", flat=True).first() if product else None
    ) or 1990
    proposal = draft_proposal(
        acting=supplier,
        topic=topic,
        title=f"{name} 群友定制装"[:60],
        spec="按群友意见改良",
        description=f"群里 {cards[0].members} 位会员提到「{topic.title}」, 我们按大家的意见做了这一款。",
        target_price_fen=price,
        deposit_fen=max(1, price // 5),
        min_units=30,
        deadline=timeutil.now() + timedelta(days=5),
        per_member_limit=5,
    )
    proposal = publish_proposal(acting=admin, proposal=proposal)
    stays = GroupMembership.objects.filter(
        group__in=proposal.groups.all(), left_at__isnull=True
    ).select_related("member")
    for n, stay in enumerate(stays.order_by("id")[:8]):
        placed = place_preorder(
            member=stay.member,
            proposal=proposal,
            quantity=1 + n % 3,
            idempotency_key=f"demo-preorder-{n}",
            group=stay.group,
        )
        _demo_payment(placed.order)


# (name, pyramid role, category, [(sku code, spec, price fen, tiers)])
Variant = tuple[str, str, int, list[tuple[int, int]]]
CATALOG: list[tuple[str, str, str, list[Variant]]] = [
    ("艾草暖贴", "traffic", "个护健康", [("AC-10", "10贴/盒", 990, [(3, 890)])]),
    ("五常大米", "strategic", "粮油", [("RICE-5", "5kg", 6990, [(2, 6590)])]),
    ("土鸡蛋", "traffic", "生鲜", [("EGG-30", "30枚", 2990, [])]),
    ("纯牛奶", "regular", "乳品", [("MILK-12", "250ml×12", 5490, [(2, 4990)])]),
    ("宝宝米粉", "member_welfare", "母婴", [("BABY-1", "400g", 8900, [])]),
    ("有机蔬菜礼盒", "fission", "生鲜", [("VEG-BOX", "5斤装", 3990, [(5, 3590)])]),
    ("洗衣凝珠", "regular", "日化", [("POD-50", "50颗", 4590, [])]),
    ("坚果礼盒", "strategic", "休闲食品", [("NUT-BOX", "1.2kg", 12800, [(3, 11800)])]),
]


def _seed_catalog_and_orders(
    rng: random.Random,
    admin: Staff,
    stores: list[OrgNode],
    groups_by_store: dict[int, list[CustomerGroup]],
    *,
    orders: int,
    progress: Progress,
) -> int:
    """Products through the real catalog actions, stock at every store, and orders through the
    real place_order; about a third are then cancelled and a third time out (swept)."""
    from datetime import timedelta

    from shequn.catalog import actions as catalog
    from shequn.core import timeutil
    from shequn.orders.actions import (
        LineRequest,
        cancel_unpaid_order,
        place_order,
        sweep_expired_orders,
    )
    from shequn.orders.models import Order, OrderChannel
    from shequn.shop.actions import push_product_card

    suppliers = [
        catalog.create_supplier(acting=admin, name=name, contact_name=_person_name(rng))
        for name in ("湘中农产品合作社", "华南日化供应链", "江南母婴优选")
    ]
    skus = []
    for index, (name, role, category, variants) in enumerate(CATALOG):
        product = catalog.create_product(
            acting=admin,
            supplier=suppliers[index % len(suppliers)],
            name=name,
            pyramid_role=role,
            category=catalog.get_or_create_category(acting=admin, name=category),
        )
        for code, spec, price, tiers in variants:
            sku = catalog.add_sku(
                acting=admin, product=product, code=code, price_fen=price, spec=spec
            )
            if tiers:
                catalog.set_price_tiers(acting=admin, sku=sku, tiers=tiers)
            skus.append(sku)
    for index, store in enumerate(stores):
        for sku in skus:
            catalog.adjust_stock(
                acting=admin, store=store, sku=sku, delta=rng.randint(80, 400), reason="receipt"
            )
        progress("商品与库存", index + 1, len(stores))

    # HQ pushes every product's card into every group: the groups' feeds on the member pages.
    all_groups = [group.pk for groups in groups_by_store.values() for group in groups]
    posts_by_group: dict[int, list[Any]] = {}
    for product in {sku.product_id: sku.product for sku in skus}.values():
        for post in push_product_card(
            acting=admin, product=product, group_ids=all_groups, headline=rng.choice(HEADLINES)
        ):
            posts_by_group.setdefault(post.group_id, []).append(post)

    buyers = list(Member.objects.filter(chain_id=admin.node.chain_id).order_by("?")[:orders])
    sharers = _seed_sharers(admin, buyers[:20])
    placed = []
    for n, member in enumerate(buyers):
        group = rng.choice(groups_by_store[member.home_store_id])
        lines = [
            LineRequest(sku.pk, rng.choice([1, 1, 1, 2, 3]))
            for sku in rng.sample(skus, rng.choice([1, 1, 2, 3]))
        ]
        source: dict[str, Any] = {
            "channel": rng.choice(OrderChannel.values),
            "sharer": rng.choice(sharers) if sharers and rng.random() < 0.3 else None,
        }
        if rng.random() < 0.5:  # half of them came through a card in their group
            post = rng.choice(posts_by_group[group.pk])
            source = {"channel": OrderChannel.GROUP_SHARE, "content_ref": post.content_ref}
        result = place_order(
            member=member,
            store=member.home_store,
            lines=lines,
            idempotency_key=f"demo-{n}",
            source_group=group,
            **source,
        )
        placed.append(result.order)
        progress("订单", n + 1, len(buyers))
    rng.shuffle(placed)
    fifth = len(placed) // 5
    cancelled, timed_out, paid = placed[:fifth], placed[fifth : 2 * fifth], placed[2 * fifth :]
    for order in cancelled:
        cancel_unpaid_order(order=order, member=order.member)
    Order.objects.filter(pk__in=[o.pk for o in timed_out]).update(
        payment_deadline=timeutil.now() - timedelta(minutes=1)
    )
    sweep_expired_orders()
    _pay_pick_up_and_refund(rng, paid[: len(paid) * 3 // 4])  # the rest stay pending payment
    if buyers:
        _seed_promotions(admin, skus, buyers)
    return len(placed)


# What members say in the demo's groups (the demand river): needs, complaints, praise, questions,
# an ad or two and chit-chat; each said by a few members so the demand board has voices to count.
DEMO_CHAT = (
    "要是有小包装的艾草暖贴就好了, 一盒用不完",
    "艾草暖贴能不能出个无烟的, 在家贴着也舒服",
    "希望土鸡蛋能有15枚的小盒装, 老两口吃不完",
    "宝宝米粉要是有小袋分装的就好了, 出门方便",
    "纯牛奶能不能进点低脂的",
    "昨天买的土鸡蛋送来碎了好几个, 太失望了",
    "有机蔬菜礼盒里的青菜都蔫了, 不新鲜",
    "提货排了半小时没人管, 下次不来了",
    "退款申请三天了还没到账, 怎么回事",
    "五常大米真香, 孩子多吃了一碗饭",
    "王店长服务太好了, 还帮我把米搬上车",
    "坚果礼盒送人很有面子, 下次还买",
    "今天几点可以来提货",
    "艾草暖贴孕妇能用吗",
    "拼团还差几个人成团",
    "大家早上好, 今天降温注意保暖",
    "收到, 谢谢群主",
    "兼职日结, 在家就能做, 加我vx: job8888",
)


def _seed_group_chat(rng: random.Random, chain: OrgNode, groups: list[CustomerGroup]) -> int:
    """Two weeks of group messages (WeCom-style ids), labelled by the real classify sweep: the
    console's 群消息, 投诉 and 需求看板 then have something to show."""
    from datetime import timedelta

    from shequn.core import timeutil
    from shequn.demand.actions import classify_pending
    from shequn.demand.ingest import MessageRow, epoch_us, store_rows

    now = timeutil.now()
    rows = []
    for group in groups[:12]:
        speakers = list(
            GroupMembership.objects.filter(group=group, left_at__isnull=True).values_list(
                "member_id", flat=True
            )[:40]
        )
        if not speakers:
            continue
        for n, text in enumerate(rng.sample(DEMO_CHAT, 10)):
            for repeat in range(rng.choice([1, 1, 2])):
                at = now - timedelta(days=rng.uniform(0, 14), minutes=repeat * 7)
                key = f"demo-{group.pk}-{n}-{repeat}"
                who = rng.choice(speakers)
                rows.append(
                    MessageRow(
                        chain.pk, group.pk, "wecom", key, who, None, "", epoch_us(at), "text", text
                    )
                )
    store_rows(rows)
    classify_pending()
    return len(rows)


def _seed_sharers(admin: Staff, members: list[Member]) -> list[Member]:
    """Twenty approved sharers (推客), the first two levels deep, and a default commission of
    10 % (level 1) and 3 % (level 2): the demo's paid orders then show up in their earnings."""
    from shequn.referrals.actions import apply_as_sharer, decide_sharer, set_commission_rule

    set_commission_rule(acting=admin, rates_bp=[1000, 300])
    approved: list[Member] = []
    for n, member in enumerate(members):
        parent = approved[0] if approved and n % 4 == 0 else None
        sharer = apply_as_sharer(member=member, invited_by=parent)
        decide_sharer(acting=admin, sharer=sharer, approve=True)
        approved.append(member)
    return approved


def _seed_promotions(admin: Staff, skus: list[Any], members: list[Member]) -> None:
    """A running flash sale and a running group-buy with teams in the making, so the member
    pages show countdowns, team progress and share links from the first minute."""
    from datetime import timedelta

    from shequn.core import timeutil
    from shequn.orders.actions import LineRequest, place_order
    from shequn.promotions.actions import create_flash_sale, create_group_buy
    from shequn.promotions.models import GroupBuySeat

    now = timeutil.now()
    flash_sku, team_sku = skus[0], skus[1]
    create_flash_sale(
        acting=admin,
        sku=flash_sku,
        name=f"周三秒杀 · {flash_sku.product.name}",
        price_fen=max(1, flash_sku.price_fen * 6 // 10),
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(days=2),
        per_member_limit=2,
        per_order_limit=2,
        chain_quota=300,
    )
    campaign = create_group_buy(
        acting=admin,
        sku=team_sku,
        name=f"三人团 · {team_sku.product.name}",
        price_fen=max(1, team_sku.price_fen * 3 // 4),
        team_size=3,
        team_minutes=24 * 60,
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(days=3),
        per_member_limit=2,
        per_order_limit=2,
    )
    team_id = None
    neighbours = [m for m in members if m.home_store_id == members[0].home_store_id][:5]
    for n, member in enumerate(neighbours):  # a full team, then one waiting for a third
        order = place_order(
            member=member,
            store=member.home_store,
            lines=[LineRequest(team_sku.pk, 1)],
            idempotency_key=f"demo-tuan-{n}",
            group_buy_id=campaign.pk,
            team_id=team_id if n % 3 else None,
        ).order
        _demo_payment(order)
        team_id = GroupBuySeat.objects.get(order=order).team_id


HEADLINES = ("周三会员日专享", "专家讲座同款", "群友复购最多", "店长推荐", "限量到店自提")


def _demo_payment(order: Any) -> None:
    """What WeChat Pay's notification would have told us: the order is paid."""
    from shequn.orders.actions import PaymentReport, record_payment

    record_payment(
        PaymentReport(
            notification_id=f"EV-DEMO-{order.number}",
            out_trade_no=order.number,
            transaction_id=f"4200{order.number}",
            amount_fen=order.total_fen,
            mchid=DEMO_MCHID,
            appid=DEMO_APPID,
            succeeded_at=order.created_at,
            payer_openid=f"o-demo-{order.member_id}",
        ),
        expected_mchid=DEMO_MCHID,
        expected_appid=DEMO_APPID,
    )


def _pay_pick_up_and_refund(rng: random.Random, orders: list[Any]) -> None:
    """What the payment gateway and the tills would have done: pay, hand over, refund some."""
    from shequn.orders.actions import (
        RefundReport,
        record_refund_result,
        request_refund,
        verify_pickup,
    )
    from shequn.orders.models import Order

    managers = {s.node_id: s for s in Staff.objects.filter(role=Role.STORE_MANAGER)}
    cashiers = {s.node_id: s for s in Staff.objects.filter(role=Role.CASHIER)}
    for n, order in enumerate(orders):
        _demo_payment(order)
        order = Order.objects.get(pk=order.pk)
        if n % 2 == 0:
            verify_pickup(
                acting=cashiers[order.store_id], store=order.store, code=order.pickup_code
            )
        if n % 7 == 3:
            amount = order.total_fen if rng.random() < 0.5 else max(1, order.total_fen // 3)
            refund = request_refund(
                acting=managers[order.store_id], order=order, amount_fen=amount, reason="商品破损"
            )
            record_refund_result(
                RefundReport(
                    notification_id=f"EV-DEMO-{refund.out_refund_no}",
                    event_type="REFUND.SUCCESS",
                    out_refund_no=refund.out_refund_no,
                    refund_fen=refund.amount_fen,
                    mchid=DEMO_MCHID,
                ),
                expected_mchid=DEMO_MCHID,
            )


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, role label, node name) of the demo staff, for printing after `shequn demo`."""
    return [
        (s.user.get_username(), s.get_role_display(), s.node.name)
        for s in Staff.objects.select_related("user", "node").filter(
            node__path__startswith=OrgNode.objects.get(code="demo-hq").path
        )
    ]
