"""分销: sharer applications, commissions held for review, the referral settings, and the
month's commissions (with the Excel statement)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from shequn.core.errors import InvalidInput
from shequn.core.money import yuan_to_fen
from shequn.core.timeutil import local_today
from shequn.org.roles import Perm, has_perm
from shequn.referrals.actions import decide_sharer, review_commission
from shequn.referrals.exports import export_statement
from shequn.referrals.models import BindingMode, CommissionStatus, SharerStatus
from shequn.referrals.policy import set_referral_settings
from shequn.referrals.queries import (
    access_sharer,
    leaderboard,
    month_bounds,
    month_commissions,
    referral_settings,
    visible_commissions,
    visible_sharers,
)

from ._common import _staff, staff_view


@staff_view
def referrals(request: HttpRequest) -> HttpResponse:
    """分销: applications to approve, commissions held for review, the month's commissions."""
    staff = _staff(request)
    if request.method == "POST":
        action = request.POST.get("action", "")
        target = request.POST.get("id", "")
        if action != "settings" and not target.isdigit():
            raise InvalidInput("缺少记录编号")
        if action in ("approve", "reject"):
            decide_sharer(
                acting=staff,
                sharer=access_sharer(staff, int(target)),
                approve=action == "approve",
            )
            messages.success(request, "已审核推客申请")
        elif action == "settings":
            set_referral_settings(acting=staff, **_policy_form(request))
            messages.success(request, "已保存分销设置")
        elif action in ("release", "withhold"):
            row = visible_commissions(staff).filter(pk=int(target)).first()
            if row is None:
                raise InvalidInput("佣金记录不存在")
            review_commission(acting=staff, row=row, release=action == "release")
            messages.success(request, "已处理待审核佣金")
        else:
            raise InvalidInput("未知的操作")
        return redirect("console:referrals")
    month = _month(request)
    return render(
        request,
        "console/referrals.html",
        {
            "applications": visible_sharers(staff).filter(status=SharerStatus.PENDING)[:100],
            "held": visible_commissions(staff).filter(status=CommissionStatus.HELD)[:100],
            "rows": month_commissions(staff, month)[:300],
            "leaders": leaderboard(staff, month),
            "policy": referral_settings(staff),
            "binding_modes": BindingMode.choices,
            "month": month,
            "can_review": has_perm(staff.role, Perm.MANAGE_COMMISSIONS),
            "can_approve": has_perm(staff.role, Perm.APPROVE_SHARERS),
        },
    )


def _policy_form(request: HttpRequest) -> dict[str, object]:
    """The 分销设置 form, in the units operators think in (yuan, percent), as the policy's."""
    form = request.POST
    try:
        return {
            "binding_mode": form.get("binding_mode", ""),
            "binding_days": int(form.get("binding_days", "")),
            "attribution_days": int(form.get("attribution_days", "")),
            "freeze_days": int(form.get("freeze_days", "")),
            "min_withdrawal_fen": yuan_to_fen(form.get("min_withdrawal", "")),
            "group_owner_bp": int(Decimal(form.get("group_owner_percent", "")) * 100),
        }
    except (ValueError, ArithmeticError, TypeError):
        raise InvalidInput("请填写整数天数、金额(元)和比例(%)", code="invalid_setting") from None


def _month(request: HttpRequest) -> str:
    month = request.GET.get("month", "") or f"{local_today():%Y-%m}"
    month_bounds(month)  # refuses anything but YYYY-MM
    return month


@staff_view
def referrals_export(request: HttpRequest) -> HttpResponse:
    """The month's commission statement as Excel (up to 50,000 rows)."""
    staff = _staff(request)
    month = _month(request)
    response = HttpResponse(
        export_statement(acting=staff, month=month, rows=month_commissions(staff, month)[:50_000]),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="commissions-{month}.xlsx"'
    return response
