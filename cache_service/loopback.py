"""Whether a host is this machine: the one check behind "no token needed on loopback" and "no proxy to loopback"."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``); False for any other name or address.

    ``host`` is a bare name or address, as ``urlsplit(url).hostname`` gives it (an IPv6 address without brackets).
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
