"""Every route of the admin API that changes the cache refuses a caller without the admin token, or with a wrong
one, and changes nothing: the routes are the API's own table, so a route added later is covered without a list."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from cache_service.api.admin.api import PREFIX, AdminApi
from tests.cache_service.api.admin.test_api import EVENTS, Admin, assert_error
from tests.cache_service.api.admin.test_api import admin as admin
from tests.cache_service.api.admin.test_api import shared as shared

_MUTATING = ("POST", "PUT", "PATCH", "DELETE")
# A body the route would act on if the token were not checked; a route not named here gets {} (still refused).
BODIES: dict[str, Any] = {
    "load": {"paths": [EVENTS]},
    "free": {"paths": [EVENTS]},
    "purge": {"target": 0.0},
    "pin": {"path": EVENTS},
    "unpin": {"path": EVENTS},
    "ttl": {"path": EVENTS, "ttl": "1h"},
    "cluster/drain": {"worker": "w-0123456789ab"},
}


def mutating_routes() -> list[tuple[str, str]]:
    """Every (method, route) of ``AdminApi`` that changes state, ``{id}`` filled in with a job id."""
    routes = AdminApi(SimpleNamespace(manager=None)).endpoints()  # type: ignore[arg-type]
    found = [
        (method, path.removeprefix(PREFIX + "/").replace("{id}", "0123456789ab"))
        for path, methods in sorted(routes.items())
        for method in sorted(methods)
        if method in _MUTATING
    ]
    assert len(found) >= 10, found  # the table was read, not an empty one
    return found


ROUTES = mutating_routes()
IDS = [f"{method} {route}" for method, route in ROUTES]


def _body(route: str) -> Any:
    return BODIES.get(route, {})


@pytest.mark.parametrize(("method", "route"), ROUTES, ids=IDS)
def test_every_mutating_admin_route_refuses_a_caller_without_the_token(admin: Admin, method: str, route: str) -> None:
    reply = admin.call(method, route, _body(route), token=None)
    assert_error(reply, 401, "Unauthorized")
    assert reply.headers["www-authenticate"].startswith("Bearer")
    # A token anywhere but the Authorization header is no token.
    reply = admin.http.request(
        method, f"/admin/v1/{route}?token={admin.token}", body=b"{}", headers={"X-Admin-Token": admin.token}
    )
    assert_error(reply, 401, "Unauthorized")


@pytest.mark.parametrize(("method", "route"), ROUTES, ids=IDS)
def test_every_mutating_admin_route_refuses_a_wrong_token(admin: Admin, method: str, route: str) -> None:
    for wrong in ("not-the-token", admin.token + "x", admin.token[:-1], "x" * len(admin.token)):
        assert_error(admin.call(method, route, _body(route), token=wrong), 403, "Forbidden")
    reply = admin.http.request(
        method, f"/admin/v1/{route}", body=b"{}", headers={"Authorization": f"Basic {admin.token}"}
    )
    assert_error(reply, 401, "Unauthorized")
