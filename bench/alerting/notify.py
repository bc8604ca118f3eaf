"""Alerts replayed through a real Alertmanager, with the day's time compressed, to a webhook that records every
notification.

A configuration's timers (``group_wait``, ``group_interval``, ``repeat_interval`` on every route, and
``resolve_timeout``) are divided by the same ``speedup`` as the day (``scaled_config``); its receivers' webhooks all
point at ``Webhook``. Each alert is posted to ``/api/v2/alerts`` when it starts firing (``endsAt`` past the end of
the replay) and again when it resolves (``endsAt`` then): what Alertmanager does with an alert depends only on when
it fires and resolves, so Prometheus's resends every minute in between would change nothing it sends. A notification
is one webhook call: one group, one receiver.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bench.alerting.engine import Firing, parse_duration
from infra.ports import LOOPBACK, free_port

TIMERS = ("group_wait", "group_interval", "repeat_interval")
DEFAULT_TIMERS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
"""Alertmanager's defaults, set explicitly on the root route so that they are scaled too."""
LEAD = 1.0
"""Wall seconds between starting a replay and the day's first minute."""


@dataclass(frozen=True)
class Notification:
    """One webhook call: when (seconds of the replayed day's clock), to which receiver, about which alerts."""

    at: float
    receiver: str
    status: str
    alerts: tuple[dict[str, Any], ...]

    def firing(self, severity: str | None = None) -> list[dict[str, str]]:
        """Labels of the firing alerts it carries (of ``severity`` only, if given)."""
        return [
            a["labels"]
            for a in self.alerts
            if a["status"] == "firing" and (severity is None or a["labels"].get("severity") == severity)
        ]

    @property
    def is_page(self) -> bool:
        """True if it carries a firing critical alert."""
        return bool(self.firing("critical"))


def _seconds_text(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def scaled_config(config: dict[str, Any], speedup: float, webhook_url: str) -> dict[str, Any]:
    """``config`` with every timer divided by ``speedup`` and every webhook pointing at ``webhook_url``."""
    scaled = copy.deepcopy(config)
    root = scaled["route"]
    for timer, default in DEFAULT_TIMERS.items():
        root.setdefault(timer, default)
    routes = [root]
    while routes:
        route = routes.pop()
        for timer in TIMERS:
            if timer in route:
                route[timer] = _seconds_text(parse_duration(route[timer]) / speedup)
        routes += route.get("routes", [])
    settings = scaled.setdefault("global", {})
    settings["resolve_timeout"] = _seconds_text(parse_duration(settings.get("resolve_timeout", "5m")) / speedup)
    for receiver in scaled.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
    return scaled


class Webhook:
    """An HTTP server on loopback recording every notification it is sent, with its arrival time."""

    def __init__(self) -> None:
        self.port = free_port(LOOPBACK)
        self.url = f"http://{LOOPBACK}:{self.port}/notify"
        self.received: list[tuple[float, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None

    async def _notify(self, request: web.Request) -> web.Response:
        self.received.append((time.time(), await request.json()))
        return web.Response(text="ok")

    async def start(self) -> None:
        """Listen."""
        app = web.Application()
        app.router.add_post("/notify", self._notify)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass(frozen=True)
class Clock:
    """The replayed day's seconds ``start``..``end`` mapped onto wall time from ``wall0``, ``speedup`` times faster."""

    start: float
    end: float
    speedup: float
    wall0: float

    def wall(self, at: float) -> float:
        """Wall time of day time ``at``."""
        return self.wall0 + (at - self.start) / self.speedup

    def day(self, wall: float) -> float:
        """Day time of wall time ``wall``."""
        return self.start + (wall - self.wall0) * self.speedup


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat().replace("+00:00", "Z")


async def replay(alertmanager_url: str, firings: Sequence[Firing], clock: Clock) -> None:
    """Post each alert to Alertmanager when it fires and when it resolves, on ``clock``; return after the day."""
    events: dict[float, list[dict[str, Any]]] = {}
    for firing in firings:
        labels = dict(firing.labels)
        starts = _iso(clock.wall(firing.start))
        events.setdefault(firing.start, []).append(
            {"labels": labels, "startsAt": starts, "endsAt": _iso(clock.wall(clock.end) + 3600)}
        )
        if firing.end is not None and firing.end < clock.end:
            events.setdefault(firing.end, []).append(
                {"labels": labels, "startsAt": starts, "endsAt": _iso(clock.wall(firing.end))}
            )
    async with aiohttp.ClientSession() as session:
        for at in sorted(events):
            if at < clock.start or at >= clock.end:
                continue
            await asyncio.sleep(max(0.0, clock.wall(at) - time.time()))
            async with session.post(alertmanager_url + "/api/v2/alerts", json=events[at]) as response:
                if response.status != 200:
                    raise RuntimeError(f"Alertmanager refused alerts: {response.status} {await response.text()}")
    await asyncio.sleep(max(0.0, clock.wall(clock.end) - time.time()))


def notifications(webhook: Webhook, clock: Clock) -> list[Notification]:
    """What the webhook received during the replayed day, on the day's clock."""
    out = []
    for wall, payload in webhook.received:
        at = clock.day(wall)
        if clock.start <= at < clock.end:
            alerts = tuple(
                {"status": a.get("status", ""), "labels": dict(a.get("labels", {}))} for a in payload.get("alerts", [])
            )
            out.append(Notification(at, str(payload.get("receiver", "")), str(payload.get("status", "")), alerts))
    return out
