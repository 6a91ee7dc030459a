"""The weekly promotion calendar (周期活动): HQ sets a promotion once — "flash sale of moxa
patches, Monday, Wednesday and Friday at 10:00, for two hours, announced in these groups" — and
the sweep makes each of the next seven days of it real, through the ordinary create actions, in
the name (and with the permissions) of the person who set it up.

``create_schedule`` and ``stop_schedule`` are actions; ``materialize_schedules`` is the sweep
(idempotent: one ``ScheduledRun`` per schedule and day, unique); ``week_calendar`` is the read
the console and the API show as a week grid.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any

from django.db import IntegrityError, transaction

from shequn.catalog.models import Sku
from shequn.core import timeutil
from shequn.core.audit import record_audit
from shequn.core.errors import DomainError, InvalidInput, NotFound
from shequn.core.validation import clean_count, clean_fen, clean_text
from shequn.groups.models import CustomerGroup, GroupStatus
from shequn.org.models import Staff
from shequn.org.roles import Perm
from shequn.org.scoping import require_perm, scoped

from . import actions
from .models import (
    FlashSale,
    GroupBuy,
    PromotionSchedule,
    ScheduledRun,
    ScheduleKind,
)

logger = logging.getLogger(__name__)
DAYS_AHEAD = 7
WEEKDAY_NAMES = "一二三四五六日"
MAX_DURATION_MINUTES = 24 * 60


def create_schedule(
    *,
    acting: Staff,
    name: str,
    kind: str,
    sku: Sku,
    price_fen: int,
    weekdays: Sequence[int],
    start_time: clock,
    duration_minutes: int,
    per_member_limit: int,
    per_order_limit: int,
    chain_quota: int | None = None,
    team_size: int | None = None,
    team_minutes: int | None = None,
    group_ids: Sequence[int] = (),
    headline: str = "",
) -> PromotionSchedule:
    """A promotion that recurs on ISO ``weekdays`` (1 = Monday) at ``start_time`` (Beijing
    time). Everything is checked now, the way the create actions will check each day's run."""
    require_perm(acting, Perm.MANAGE_PROMOTIONS)
    if sku.chain_id != acting.node.chain_id:
        raise NotFound("商品不存在")
    name = clean_text(name, "名称", 100)
    headline = clean_text(headline, "推荐语", 100, required=False)
    if kind not in ScheduleKind.values:
        raise InvalidInput(f"未知的活动类型: {kind}", code="invalid_kind")
    price_fen = clean_fen(price_fen, "活动价")
    if price_fen >= sku.price_fen:
        raise InvalidInput(f"活动价须低于原价 {sku.price_fen} 分", code="price_not_lower")
    days = sorted(set(weekdays)) if not isinstance(weekdays, (str, bytes)) else []
    if not days or any(type(d) is not int or not 1 <= d <= 7 for d in days):
        raise InvalidInput("请选择星期几(1-7, 1 为周一)", code="invalid_weekdays")
    if not isinstance(start_time, clock) or start_time.tzinfo is not None:
        raise InvalidInput("开始时间为北京时间的时:分", code="invalid_time")
    duration_minutes = clean_count(duration_minutes, "持续分钟", MAX_DURATION_MINUTES)
    per_member_limit = clean_count(per_member_limit, "每人限购", actions.MAX_LIMIT)
    per_order_limit = clean_count(per_order_limit, "每单限购", actions.MAX_LIMIT)
    if kind == ScheduleKind.FLASH_SALE:
        chain_quota = clean_count(chain_quota, "秒杀名额", actions.MAX_QUOTA)
        if team_size is not None or team_minutes is not None:
            raise InvalidInput("秒杀不设成团人数", code="invalid_count")
    else:
        team_size = clean_count(team_size, "成团人数", actions.MAX_TEAM_SIZE)
        team_minutes = clean_count(team_minutes, "成团时限(分钟)", actions.MAX_TEAM_MINUTES)
        if team_size < 2 or team_minutes < actions.MIN_TEAM_MINUTES:
            raise InvalidInput("成团人数至少 2 人, 时限至少 5 分钟", code="invalid_count")
        if chain_quota is not None:
            raise InvalidInput("拼团不设秒杀名额", code="invalid_count")
    wanted = set(group_ids)
    groups = list(
        scoped(CustomerGroup.objects.filter(pk__in=wanted), acting, Perm.VIEW_GROUPS).filter(
            status=GroupStatus.ACTIVE
        )
    )
    if len(groups) != len(wanted):
        raise NotFound("社群不存在或已关闭")
    if groups:
        require_perm(acting, Perm.PUSH_CARDS)
    with transaction.atomic():
        schedule = PromotionSchedule.objects.create(
            chain_id=acting.node.chain_id,
            name=name,
            kind=kind,
            sku=sku,
            price_fen=price_fen,
            weekdays="".join(str(d) for d in days),
            start_time=start_time.replace(second=0, microsecond=0),
            duration_minutes=duration_minutes,
            per_member_limit=per_member_limit,
            per_order_limit=per_order_limit,
            chain_quota=chain_quota,
            team_size=team_size,
            team_minutes=team_minutes,
            headline=headline,
            created_by=acting,
        )
        schedule.groups.set(groups)
        record_audit(
            acting.user,
            "promotions.schedule_created",
            target=schedule,
            scope_path=acting.node.path,
            details={"kind": kind, "weekdays": schedule.weekdays, "sku": sku.pk},
        )
    return schedule


def stop_schedule(*, acting: Staff, schedule: PromotionSchedule) -> PromotionSchedule:
    """No more runs from now on; runs already made stay (cancel those one by one if needed).
    Stopping a stopped schedule is a no-op."""
    actions.stop_promotion(
        acting,
        schedule,
        missing="周期活动不存在",
        already=None,
        audit_action="promotions.schedule_stopped",
        field="stopped_at",
    )
    return schedule


def _window(schedule: PromotionSchedule, day: date) -> tuple[datetime, datetime]:
    starts = datetime.combine(day, schedule.start_time, tzinfo=timeutil.SHANGHAI)
    return starts, starts + timedelta(minutes=schedule.duration_minutes)


def _due_days(schedule: PromotionSchedule, today: date, now: datetime) -> list[date]:
    days = (today + timedelta(days=n) for n in range(DAYS_AHEAD))
    return [
        day
        for day in days
        if str(day.isoweekday()) in schedule.weekdays and _window(schedule, day)[1] > now
    ]


def materialize_schedules(
    *, now: datetime | None = None, batch: int = 500, pause_s: float = 0.0
) -> int:
    """Make the next seven days of every running schedule real; returns how many runs it made.
    A day that cannot be made (the creator lost the permission, the SKU is off sale) is
    recorded with the reason once, not retried every sweep."""
    now = now or timeutil.now()
    today = timeutil.to_local(now).date()
    made = 0
    schedules = PromotionSchedule.objects.filter(stopped_at__isnull=True).select_related(
        "sku__product", "created_by__node", "created_by__user"
    )
    for schedule in schedules[:batch]:
        done = set(
            ScheduledRun.objects.filter(schedule=schedule, run_date__gte=today).values_list(
                "run_date", flat=True
            )
        )
        for day in _due_days(schedule, today, now):
            if day not in done:
                made += _make_run(schedule, day)
                if pause_s:
                    time.sleep(pause_s)
    return made


def _make_run(schedule: PromotionSchedule, day: date) -> int:
    starts, ends = _window(schedule, day)
    label = f"周{WEEKDAY_NAMES[day.isoweekday() - 1]} {schedule.start_time:%H:%M}"
    try:
        with transaction.atomic():
            run = ScheduledRun.objects.create(schedule=schedule, run_date=day)
            promotion = _create_promotion(schedule, starts, ends, f"{schedule.name} · {label}")
            if isinstance(promotion, FlashSale):
                run.flash_sale = promotion
            else:
                run.group_buy = promotion
            run.save(update_fields=["flash_sale", "group_buy"])
            group_ids = list(schedule.groups.values_list("pk", flat=True))
            if group_ids:
                from shequn.shop.actions import push_product_card

                push_product_card(
                    acting=schedule.created_by,
                    product=schedule.sku.product,
                    group_ids=group_ids,
                    headline=schedule.headline or f"{label} 开始 · {schedule.name}",
                )
        return 1
    except IntegrityError:  # another sweeper made this day first
        return 0
    except DomainError as exc:
        logger.warning("schedule %s on %s not made: %s", schedule.pk, day, exc.message)
        with contextlib.suppress(IntegrityError), transaction.atomic():
            ScheduledRun.objects.create(
                schedule=schedule, run_date=day, skipped_reason=exc.message[:200]
            )
        return 0


def _create_promotion(
    schedule: PromotionSchedule, starts: datetime, ends: datetime, name: str
) -> FlashSale | GroupBuy:
    common: dict[str, Any] = {
        "acting": schedule.created_by,
        "sku": schedule.sku,
        "name": name[:100],
        "price_fen": schedule.price_fen,
        "starts_at": starts,
        "ends_at": ends,
        "per_member_limit": schedule.per_member_limit,
        "per_order_limit": schedule.per_order_limit,
    }
    if not schedule.created_by.user.is_active:
        raise InvalidInput("设置该周期活动的员工已停用", code="creator_inactive")
    if schedule.kind == ScheduleKind.FLASH_SALE:
        return actions.create_flash_sale(**common, chain_quota=schedule.chain_quota)
    return actions.create_group_buy(
        **common,
        team_size=schedule.team_size or 0,  # set for every group-buy schedule (create_schedule)
        team_minutes=schedule.team_minutes or 0,
    )


# --- the week as a grid ---------------------------------------------------------------------
@dataclass(frozen=True)
class CalendarEntry:
    kind: str  # flash_sale / group_buy
    name: str
    starts_at: datetime
    ends_at: datetime
    price_fen: int
    state: str  # planned (a schedule's future day), upcoming, live, ended, cancelled
    promotion_id: int | None
    schedule_id: int | None


@dataclass(frozen=True)
class CalendarDay:
    day: date
    label: str
    entries: list[CalendarEntry]


def week_calendar(staff: Staff, any_day: date) -> list[CalendarDay]:
    """Monday to Sunday of the week holding ``any_day``: the chain's flash sales and group-buys
    starting each day, and the days running schedules will make but have not made yet."""
    require_perm(staff, Perm.VIEW_PROMOTIONS)  # the whole chain's campaigns: not for suppliers
    monday = timeutil.supported_day(any_day) - timedelta(days=any_day.weekday())
    first = datetime.combine(monday, clock(), tzinfo=timeutil.SHANGHAI)
    last = first + timedelta(days=7)
    now = timeutil.now()
    entries: dict[date, list[CalendarEntry]] = {monday + timedelta(days=n): [] for n in range(7)}
    runs = list(
        ScheduledRun.objects.filter(
            schedule__chain_id=staff.node.chain_id, run_date__gte=monday, run_date__lt=last.date()
        )
    )
    made: dict[tuple[str, int | None], int] = {}
    for run in runs:
        made[("flash_sale", run.flash_sale_id)] = run.schedule_id
        made[("group_buy", run.group_buy_id)] = run.schedule_id
    promotions: list[tuple[str, FlashSale | GroupBuy]] = [
        ("flash_sale", sale)
        for sale in scoped(FlashSale.objects.all(), staff).filter(
            starts_at__gte=first, starts_at__lt=last
        )
    ]
    promotions += [
        ("group_buy", campaign)
        for campaign in scoped(GroupBuy.objects.all(), staff).filter(
            starts_at__gte=first, starts_at__lt=last
        )
    ]
    for kind, promo in promotions:
        state = (
            "cancelled"
            if promo.cancelled_at
            else "upcoming"
            if promo.starts_at > now
            else "live"
            if promo.ends_at > now
            else "ended"
        )
        entries[timeutil.to_local(promo.starts_at).date()].append(
            CalendarEntry(
                kind,
                promo.name,
                promo.starts_at,
                promo.ends_at,
                promo.price_fen,
                state,
                promo.pk,
                made.get((kind, promo.pk)),
            )
        )
    schedules = scoped(PromotionSchedule.objects.filter(stopped_at__isnull=True), staff)
    made_days = {(run.schedule_id, run.run_date) for run in runs}
    for schedule in schedules:
        for day in entries:
            if str(day.isoweekday()) not in schedule.weekdays or (schedule.pk, day) in made_days:
                continue
            starts, ends = _window(schedule, day)
            if ends <= now:
                continue
            entries[day].append(
                CalendarEntry(
                    schedule.kind,
                    schedule.name,
                    starts,
                    ends,
                    schedule.price_fen,
                    "planned",
                    None,
                    schedule.pk,
                )
            )
    return [
        CalendarDay(day, f"周{WEEKDAY_NAMES[day.weekday()]}", sorted(items, key=_by_start))
        for day, items in entries.items()
    ]


def _by_start(entry: CalendarEntry) -> datetime:
    return entry.starts_at
