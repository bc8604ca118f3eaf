"""Paths given to the admin API (load, free, purge, pin, unpin, ttl bodies; stat and ls queries) cannot escape:
``..``, ``.``, NUL, control characters and relative paths are refused naming the field; what is not a traversal once
decoded (``%2e%2e`` in JSON, double encoding, backslashes) names a path of its own, never another."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.cache_service.api.admin.test_api import EVENTS, Admin, assert_error
from tests.cache_service.api.admin.test_api import admin as admin
from tests.cache_service.api.admin.test_api import shared as shared

ESCAPES = {
    "dot-dot": "/warehouse/../outside",
    "trailing dot-dot": "/warehouse/events/..",
    "dot": "/warehouse/./events",
    "relative": "warehouse/events",
    "relative dot-dot": "../warehouse",
    "NUL": "/warehouse/events\x00/x",
    "newline": "/warehouse/a\nb",
}
# (route, the body with the path put in, the field an error names)
ROUTES: list[tuple[str, Any, str]] = [
    ("load", lambda p: {"paths": [p]}, "paths[0]"),
    ("load", lambda p: {"paths": [EVENTS, p]}, "paths[1]"),
    ("free", lambda p: {"paths": [p]}, "paths[0]"),
    ("purge", lambda p: {"target": 0.0, "paths": [p]}, "paths[0]"),
    ("pin", lambda p: {"path": p}, "path"),
    ("unpin", lambda p: {"path": p}, "path"),
    ("ttl", lambda p: {"path": p, "ttl": "1h"}, "path"),
]


@pytest.mark.parametrize("escape", ESCAPES.values(), ids=ESCAPES.keys())
@pytest.mark.parametrize(("route", "body", "field"), ROUTES, ids=[f"{r}-{f}" for r, _, f in ROUTES])
def test_admin_body_paths_that_could_escape_are_refused_naming_the_field(
    admin: Admin, route: str, body: Any, field: str, escape: str
) -> None:
    # With the token: the refusal is the path's, not the caller's. The fixture checks that nothing changed.
    assert_error(admin.call("POST", route, body(escape)), 400, "InvalidArgument", field)


QUERY_ESCAPES = {
    "dot-dot": "/warehouse/../outside",
    "encoded dot-dot": "/warehouse/%2e%2e/outside",
    "encoded slash and dot-dot": "/warehouse%2F..%2Foutside",
    "encoded NUL": "/warehouse/events%00",
    "relative": "warehouse/events",
}


@pytest.mark.parametrize("route", ["stat", "ls"])
@pytest.mark.parametrize("raw", QUERY_ESCAPES.values(), ids=QUERY_ESCAPES.keys())
def test_admin_query_paths_that_could_escape_are_refused(admin: Admin, route: str, raw: str) -> None:
    assert_error(admin.call("GET", f"{route}?path={raw}", token=None), 400, "InvalidArgument", "path")


@pytest.mark.parametrize(
    "path", ["/warehouse/%2e%2e/outside", "/warehouse/%252e%252e/outside", "/warehouse\\..\\outside", "//outside"]
)
def test_admin_paths_that_are_no_traversal_once_decoded_name_a_path_of_their_own(admin: Admin, path: str) -> None:
    reply = admin.call("GET", f"stat?path={quote(path, safe='')}", token=None)
    if reply.status == 200:  # "//outside" is "/outside": a path of its own, outside every mount
        assert reply.json()["path"] == "/outside"
    else:
        assert_error(reply, 404, "NotFound", "path")
