"""The server side of bench/flash_sale_http.py: Shequn's WSGI app under ``shequn.server``, plus one
bench-only view (the reference) mounted in the same app, so both legs pass through the same
server, middleware and database. Started in its own process; never part of the product.

Usage: python bench/_flash_http_server.py PORT WORKERS   (DATABASE_URL etc. in the environment)
"""

from __future__ import annotations

import json
import logging
import sys

from shequn.wsgi import application  # sets Django up (and its logging)

# Refusals (409, 422 sold out) are the expected half of a flash sale, not warnings to print.
# Set after Django's setup, which resets the ``django.*`` loggers' levels.
logging.getLogger("django.request").setLevel(logging.ERROR)
logging.getLogger("shequn").setLevel(logging.ERROR)

from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from shequn import urls  # noqa: E402
from shequn.server import serve  # noqa: E402

INSERT_ORDER = (
    "INSERT INTO bench_flash_order (number, member_id, store_id, sku_id, total_fen)"
    " VALUES (%s, %s, %s, %s, 990)"
)
CLAIM = (
    "UPDATE bench_flash_stock SET allocated = allocated + 1 WHERE id = 1 AND allocated < quantity"
)


class SoldOut(Exception):
    pass


@csrf_exempt
def reference(request: HttpRequest) -> JsonResponse:
    """The minimal flash purchase as a plain Django view: the order INSERT and the guarded
    stock UPDATE in one transaction, nothing else."""
    body = json.loads(request.body)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                INSERT_ORDER,
                [f"F{body['n']:020d}", body["member_id"], body["store_id"], body["sku_id"]],
            )
            cursor.execute(CLAIM)
            if cursor.rowcount == 0:
                raise SoldOut
    except SoldOut:
        return JsonResponse({"code": "sold_out", "message": "已抢光"}, status=409)
    return JsonResponse({"ok": True}, status=201)


urls.urlpatterns.append(path("bench/reference-flash", reference))

if __name__ == "__main__":
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    serve(application, host="127.0.0.1", port=port, workers=workers, quiet=True)
