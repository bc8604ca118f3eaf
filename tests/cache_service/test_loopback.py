"""The one loopback check: the server's "no token needed" rule and the clients' "no proxy" rule both ask it."""

from __future__ import annotations

import pytest

from cache_service.loopback import is_loopback


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.255.0.9", "::1"])
def test_this_machine_is_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "cache.internal", "localhost.example.com", "", "[::1]"])
def test_anything_else_is_not(host: str) -> None:
    # A bracketed IPv6 literal is a URL's spelling, not a host: callers pass urlsplit(url).hostname.
    assert not is_loopback(host)
