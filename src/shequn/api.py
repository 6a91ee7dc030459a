"""The HTTP API (Django Ninja), OpenAPI at /api/docs.

Handlers only parse, authorize and render: every write calls one action, every read one scoped
query. Every error — domain, validation, auth, parsing, size — leaves as one JSON shape:
``{"code": "...", "message": "...", "details": {...}?}``.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer

from shequn import __version__
from shequn.core.errors import DomainError, InvalidInput
from shequn.org.auth import API_AUTH, docs_access

logger = logging.getLogger("shequn.api")


class StrictJSONParser(Parser):
    """JSON bodies must be UTF-8; anything else is refused with a clear code."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("请求体须为 UTF-8 编码", code="invalid_encoding") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise InvalidInput("请求体不是有效的 JSON", code="invalid_json") from None
        if not isinstance(data, dict):
            raise InvalidInput("请求体须为 JSON 对象", code="invalid_json")
        return data


class UnicodeJSONRenderer(JSONRenderer):
    """Chinese text as UTF-8, not \\u escapes: readable in logs and half the bytes."""

    json_dumps_params = {"ensure_ascii": False}  # noqa: RUF012 - ninja's own class attribute


# What every error response looks like, and when each status is answered. The schema names them
# for each operation, so a client (and the schemathesis run in the suite) knows what to expect.
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "稳定的错误代码, 如 group_full"},
        "message": {"type": "string", "description": "给人看的中文说明"},
        "details": {"type": "object", "description": "补充信息(字段错误、建议等)"},
    },
}
ERRORS = {
    400: "请求无法解析: 非 UTF-8/JSON 的请求体、Idempotency-Key 格式不对、参数过多",
    401: "未登录、令牌无效或已停用",
    403: "当前角色无此权限, 或 CSRF 校验失败",
    404: "对象不存在或不在调用者的数据范围内(两者同一回答, 无法探测编号)",
    409: "与当前状态冲突(重复、已处理、并发修改)",
    413: "请求体过大",
    422: "参数不合法、数值超出范围, 或业务规则拒绝",
    429: "尝试过于频繁, 请稍后再试",
}
PUBLIC_ERRORS = (400, 404, 409, 413, 422, 429)


class ShequnAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        document_errors(schema)
        return schema


def document_errors(schema: dict[str, Any]) -> None:
    """Add the error responses to every operation: the same shape whatever the status."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path in schema["paths"].values():
        for operation in path.values():
            secured = bool(operation.get("security"))
            for status, description in ERRORS.items():
                if not secured and status not in PUBLIC_ERRORS:
                    continue
                operation["responses"].setdefault(status, {"description": description, **ref})


api = ShequnAPI(
    title="Shequn 社群新零售 API",
    version=__version__,
    description="组织、会员、社群与邀请。所有写操作支持 `Idempotency-Key` 请求头。",
    auth=API_AUTH,
    parser=StrictJSONParser(),
    renderer=UnicodeJSONRenderer(),
    urls_namespace="api",
    docs_url="/docs",
    docs_decorator=docs_access,  # SHEQUN_API_DOCS_PUBLIC off: staff only
)


def error(
    request: HttpRequest, status: int, code: str, message: str, **details: Any
) -> HttpResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return api.create_response(request, body, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return api.create_response(request, exc.as_dict(), status=exc.status)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors
    ]
    return error(request, 422, "invalid_input", "请求参数不合法", errors=fields)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error(request, 401, "not_authenticated", "请先登录或提供有效的 API 令牌")


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if isinstance(cause, DomainError):  # raised by StrictJSONParser, wrapped by ninja
        return api.create_response(request, cause.as_dict(), status=400)
    if isinstance(cause, RequestDataTooBig):
        return error(request, 413, "payload_too_large", "请求体过大")
    if exc.status_code == 403:
        return error(request, 403, "csrf_failed", "CSRF 校验失败, 请刷新页面后重试")
    return error(request, exc.status_code, "bad_request", str(exc))


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error(request, 413, "payload_too_large", "请求体过大")


@api.exception_handler(SuspiciousOperation)
def on_suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    """Django's own refusals of a request (over 1,000 parameters, a bad host …)."""
    return error(request, 400, "bad_request", "请求无法处理: 参数过多或格式异常")


@api.exception_handler(OverflowError)
def on_overflow(request: HttpRequest, exc: OverflowError) -> HttpResponse:
    """A number past what the database stores (an id of 25 digits): out of range, not a crash."""
    return error(request, 422, "out_of_range", "数值超出范围")


@api.exception_handler(DataError)
def on_data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    return error(request, 422, "out_of_range", "数值超出范围或格式不被数据库接受")


@api.exception_handler(Http404)
def on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error(request, 404, "not_found", "对象不存在")


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    if settings.DEBUG:
        raise exc
    incident = uuid.uuid4().hex[:12]
    logger.exception("unhandled API error, incident %s", incident)
    return error(request, 500, "internal_error", f"服务器内部错误, 事件编号 {incident}")


def _register_routers() -> None:
    from shequn.catalog.api import router as catalog
    from shequn.demand.api import router as demand
    from shequn.groups.api import invitations_router, join_router, rewards_router
    from shequn.groups.api import router as groups
    from shequn.members.api import router as members
    from shequn.orders.api import router as orders
    from shequn.org.api import audit_router, auth_router
    from shequn.org.api import router as org
    from shequn.promotions.api import router as promotions
    from shequn.referrals.api import router as referrals
    from shequn.shop.api import member_router
    from shequn.shop.api import router as shop

    # Django tries URL patterns in order: the member routes (the flash-sale purchase) first,
    # so the hottest request is matched on the first try instead of after ~50 others.
    api.add_router("/member", member_router)
    api.add_router("/auth", auth_router)
    api.add_router("/org", org)
    api.add_router("/audit", audit_router)
    api.add_router("/members", members)
    api.add_router("/groups", groups)
    api.add_router("/invitations", invitations_router)
    api.add_router("/rewards", rewards_router)
    api.add_router("/join", join_router)
    api.add_router("/catalog", catalog)
    api.add_router("/orders", orders)
    api.add_router("/shop", shop)
    api.add_router("/promotions", promotions)
    api.add_router("/referrals", referrals)
    api.add_router("/demand", demand)


_register_routers()
