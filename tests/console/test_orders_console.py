"""Console order detail with the clerk's refund form, the refund queue, and the Excel export."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from shequn.orders.models import Refund
from tests.conftest import Chain, client_for
from tests.orders.test_pickup import paid_order
from tests.world import World

pytestmark = pytest.mark.django_db


def test_clerk_refunds_part_of_an_order_in_yuan(chain: Chain) -> None:
    order = paid_order(chain)  # 2 × ¥39.90
    client = client_for(chain.manager_a)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert "发起退款" in page
    assert "¥79.80" in page
    for bad in ("-1", "0", "abc", "1.234", "80"):
        client.post(f"/orders/{order.pk}/", {"amount": bad, "reason": "少发"})
    assert not Refund.objects.exists()  # every bad amount refused, nothing written
    client.post(f"/orders/{order.pk}/", {"amount": "39.90", "reason": "少发一盒"})
    refund = Refund.objects.get()
    assert (refund.amount_fen, refund.reason) == (3990, "少发一盒")
    queue = client.get("/refunds/").content.decode()
    assert refund.out_refund_no in queue
    assert (
        client_for(chain.operator_a).get(f"/orders/{order.pk}/").content.decode().count("发起退款")
        == 0
    )  # may see the order, may not refund
    assert client_for(chain.manager_b).get(f"/orders/{order.pk}/").status_code == 404


def test_orders_export_is_an_excel_file_scoped_and_masked(world: World) -> None:
    response = client_for(world.chain.operator_a).get("/orders/export.xlsx")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("订单号", "门店", "会员手机", "商品", "金额(元)")
    numbers = [row[0] for row in rows[1:]]
    assert numbers == [world.order_a.number]  # store B's order is not in A's export
    assert "****" in str(rows[1][2])  # a group operator sees masked phones
    assert float(rows[1][4]) == world.order_a.total_fen / 100


def test_refund_form_with_a_garbled_payment_is_refused(chain: Chain) -> None:
    order = paid_order(chain)
    client = client_for(chain.manager_a)
    response = client.post(f"/orders/{order.pk}/", {"amount": "1", "reason": "x", "payment": "abc"})
    assert response.status_code == 302  # back with the reason, not a 500
    assert Refund.objects.count() == 1  # the only payment is used when none is named


def test_export_writes_formula_like_names_as_text(world: World) -> None:
    from shequn.groups.models import CustomerGroup

    CustomerGroup.objects.filter(pk=world.group_a.pk).update(name="=HYPERLINK(1)")
    world.order_a.source_group = world.group_a
    world.order_a.save(update_fields=["source_group"])
    response = client_for(world.chain.manager_a).get("/orders/export.xlsx")
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    cell = sheet.cell(row=2, column=9)
    assert (cell.value, cell.data_type) == ("=HYPERLINK(1)", "s")
