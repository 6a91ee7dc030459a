"""The payout gateway: pay a sharer's withdrawal to them (WeChat Pay's 商家转账到零钱 in
production). The contract every adapter keeps: the same ``out_detail_no`` is the same transfer
— asking again after a crash returns the first answer, never a second payment.

``SimulatedPayouts`` is the local stand-in (demo, tests): it remembers every transfer in its
own table and refuses, as WeChat does, a single transfer of ¥2,000 or more without the
payee's real name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.db import IntegrityError, transaction

from .models import SimulatedTransfer

NAME_REQUIRED_FROM_FEN = 200_000  # ¥2,000: WeChat then requires the payee's real name


@dataclass(frozen=True)
class TransferResult:
    succeeded: bool
    reason: str = ""


class PayoutGateway(Protocol):
    def transfer(self, *, out_detail_no: str, amount_fen: int, payee: str) -> TransferResult: ...


class SimulatedPayouts:
    def transfer(self, *, out_detail_no: str, amount_fen: int, payee: str) -> TransferResult:
        known = SimulatedTransfer.objects.filter(out_detail_no=out_detail_no).first()
        if known is None:
            ok = amount_fen < NAME_REQUIRED_FROM_FEN
            reason = "" if ok else "单笔 2000 元及以上须提供收款用户姓名"
            try:
                with transaction.atomic():
                    known = SimulatedTransfer.objects.create(
                        out_detail_no=out_detail_no,
                        amount_fen=amount_fen,
                        result="SUCCESS" if ok else "FAIL",
                        fail_reason=reason,
                    )
            except IntegrityError:
                known = SimulatedTransfer.objects.get(out_detail_no=out_detail_no)
        return TransferResult(known.result == "SUCCESS", known.fail_reason)


def payout_gateway() -> PayoutGateway:
    return SimulatedPayouts()
