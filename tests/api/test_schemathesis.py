"""Property-based run of the whole API against its own OpenAPI schema (schemathesis).

Every operation, as an HQ admin and as a store manager, with examples hypothesis derives from
the schema (and, for the negative phase, examples that break it): no 5xx, every status the
schema documents, every body the shape the schema promises. Seeded and bounded so CI knows
how long it takes; raise ``SHEQUN_FUZZ_EXAMPLES`` for a longer hunt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shequn.api import api
from shequn.org.actions import issue_api_token
from shequn.org.models import Staff
from tests.conftest import Chain

EXAMPLES = int(os.environ.get("SHEQUN_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _connection_kept(db: None) -> Iterator[None]:
    """As Django's test client does: a request must not close the test's connection (the
    test's transaction holds the world the requests read)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/"))
schema.app = get_wsgi_application()


def bearer(staff: Staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_api_token(user=staff.user, name='fuzz').secret}"}


SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@SETTINGS
def test_api_as_hq_admin(case: schemathesis.Case, chain: Chain) -> None:
    case.call_and_validate(headers=bearer(chain.admin), checks=CHECKS)


@schema.parametrize()
@SETTINGS
def test_api_as_store_manager(case: schemathesis.Case, chain: Chain) -> None:
    case.call_and_validate(headers=bearer(chain.manager_a), checks=CHECKS)
