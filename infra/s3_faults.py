"""A fault-injecting S3 proxy: the S3 model's forwarding, with seeded random faults at configured rates.

Each request draws at most one fault, with the configured probability of each:

- ``server_error``: 500 InternalError, an S3 XML error body, the request never forwarded;
- ``slow_down``: 503 SlowDown, likewise;
- ``reset``: the connection reset (TCP RST) before any answer, the request never forwarded;
- ``cut_body``: S3's answer to a GET with its whole Content-Length announced, part of the body sent, then the
  connection closed;
- ``slow_body``: S3's answer to a GET with part of the body sent, then silence for ``stall`` seconds (longer than
  the client's read timeout), then the connection closed.

Body faults only apply to GETs that S3 answers with a body (200 or 206); a body fault drawn for another request is
not injected and not counted. Everything else passes through as ``infra.s3_model`` forwards it (with no latency and
no bandwidth cap unless asked). ``GET /_faults`` answers the counts of faults injected and requests seen as JSON, and
``PUT /_faults`` with a JSON object of rates changes them (``{}`` turns every fault off); ``_faults`` is no valid
bucket name, so no S3 request is shadowed.

From a shell: ``python -m infra.s3_faults --upstream http://127.0.0.1:5000 --port 5002 --seed 7 --slow-down 0.05
--cut-body 0.02``. In a campaign, ``with S3Faults(emulator_url, state_dir, FaultRates(...)) as s3: ... s3.url ...
s3.counts()``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from infra.ports import LOOPBACK, free_port
from infra.s3_model import CHUNK, ProxyProcess, S3ModelConfig, S3ModelProxy, run_until_interrupted, serve

FAULTS_MARKER = "infra.s3_faults"  # in the child's command line
CONTROL_PATH = "/_faults"
DEFAULT_STALL = 5.0

ERROR_FAULTS = ("server_error", "slow_down", "reset")
BODY_FAULTS = ("cut_body", "slow_body")
FAULTS = ERROR_FAULTS + BODY_FAULTS

_ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    "<RequestId>s3-faults-{number}</RequestId></Error>"
)
_ERRORS = {
    "server_error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "slow_down": (503, "SlowDown", "Please reduce your request rate."),
}


@dataclass(frozen=True)
class FaultRates:
    """The probability of each fault per request (their sum at most 1) and how long a slow body stalls."""

    server_error: float = 0.0
    slow_down: float = 0.0
    reset: float = 0.0
    cut_body: float = 0.0
    slow_body: float = 0.0
    stall: float = DEFAULT_STALL

    def __post_init__(self) -> None:
        rates = {name: getattr(self, name) for name in FAULTS}
        if any(rate < 0 or rate > 1 for rate in rates.values()) or sum(rates.values()) > 1 + 1e-9:
            raise ValueError(f"fault rates must be in [0, 1] and add up to at most 1: {rates}")
        if self.stall < 0:
            raise ValueError("stall must not be negative")

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> FaultRates:
        """From ``{"slow_down": 0.05, ...}``; missing rates are 0. Raises ``ValueError`` for unknown or bad ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**{name: float(value) for name, value in document.items()})


class S3FaultProxy(S3ModelProxy):
    """The S3 model's proxy with faults drawn from a ``random.Random(seed)`` at ``rates``; ``counts`` per fault."""

    def __init__(self, upstream: str, rates: FaultRates, *, seed: int = 0, model: S3ModelConfig | None = None) -> None:
        super().__init__(upstream, model or S3ModelConfig(latency=0.0, bandwidth=0.0))
        self.rates = rates
        self.counts = dict.fromkeys(FAULTS, 0)
        self.requests = 0
        self._random = random.Random(seed)

    def report(self) -> dict[str, Any]:
        """What ``GET /_faults`` answers: requests seen, faults injected by kind, the current rates."""
        return {"requests": self.requests, "faults": dict(self.counts), "rates": asdict(self.rates)}

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        roll = self._random.random()
        for name in FAULTS:
            roll -= getattr(self.rates, name)
            if roll < 0:
                return name
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer the control path, or draw a fault and inject it, or forward as the S3 model does."""
        if request.path == CONTROL_PATH:
            return await self._control(request)
        self.requests += 1
        fault = self.draw()
        if fault in _ERRORS:
            await request.read()
            status, code, message = _ERRORS[fault]
            self.counts[fault] += 1
            body = _ERROR_XML.format(code=code, message=message, number=self.requests).encode()
            return web.Response(status=status, body=body, content_type="application/xml")
        if fault == "reset":
            self.counts[fault] += 1
            _reset(request)
            return web.Response(status=500)  # never sent: the connection is gone
        request["fault"] = fault
        return await super().handle(request)

    async def _control(self, request: web.Request) -> web.Response:
        if request.method == "PUT":
            try:
                self.rates = FaultRates.from_json(json.loads(await request.read() or b"{}"))
            except (ValueError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.report())

    async def _relay(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        fault = request.get("fault")
        length = upstream.headers.get("Content-Length")
        if (
            fault not in BODY_FAULTS
            or request.method != "GET"
            or upstream.status not in (200, 206)
            or not length
            or int(length) < 2
        ):
            return await super()._relay(request, upstream)
        self.counts[fault] += 1
        size = int(length)
        cut = self._random.randrange(1, size)  # at least one byte sent, at least one missing
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in upstream.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                response.headers.add(name, value)
        response.content_length = size
        await response.prepare(request)
        sent = 0
        async for chunk in upstream.content.iter_chunked(CHUNK):
            piece = chunk[: cut - sent]
            await response.write(piece)
            sent += len(piece)
            if sent >= cut:
                break
        if fault == "slow_body":
            await asyncio.sleep(self.rates.stall)
        assert request.transport is not None
        request.transport.close()
        return response


def _reset(request: web.Request) -> None:
    """Close the request's connection with a TCP RST (SO_LINGER 0), as a peer that crashed or a middlebox does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.close()


class S3Faults(ProxyProcess):
    """The fault proxy as a child process on a free loopback port in front of ``upstream``; use ``url`` instead.

    Logs to ``state_dir/s3-faults.log``. ``counts()`` reads what it injected, ``set_rates()`` changes the rates
    while it runs. A context manager, or ``start()`` and ``stop()``.
    """

    def __init__(
        self, upstream: str, state_dir: Path, rates: FaultRates, *, seed: int = 0, port: int | None = None
    ) -> None:
        self.upstream = upstream
        self.rates = rates
        port = port or free_port()
        args = ["--upstream", upstream, "--port", str(port), "--seed", str(seed), "--stall", str(rates.stall)]
        for name in FAULTS:
            args += [f"--{name.replace('_', '-')}", str(getattr(rates, name))]
        super().__init__("S3 fault proxy", FAULTS_MARKER, args, port=port, log_path=state_dir / "s3-faults.log")

    def report(self) -> dict[str, Any]:
        """``{"requests": n, "faults": {kind: n}, "rates": {...}}`` as the proxy has it now."""
        with urllib.request.urlopen(self.url + CONTROL_PATH, timeout=10) as response:
            report: dict[str, Any] = json.load(response)
        return report

    def counts(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        return {name: int(n) for name, n in self.report()["faults"].items()}

    def set_rates(self, rates: FaultRates) -> None:
        """Inject faults at ``rates`` from now on."""
        body = json.dumps(asdict(rates)).encode()
        request = urllib.request.Request(self.url + CONTROL_PATH, data=body, method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            self.rates = rates

    def faults_off(self) -> None:
        """Forward every request untouched from now on (the counts stay)."""
        self.set_rates(replace(self.rates, **dict.fromkeys(FAULTS, 0.0)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.s3_faults --upstream URL --port P [--seed N] [--slow-down RATE] ...``."""
    parser = argparse.ArgumentParser(prog="python -m infra.s3_faults", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--upstream", required=True, help="the S3 endpoint to forward to, e.g. http://127.0.0.1:5000")
    parser.add_argument("--host", default=LOOPBACK, help="default: %(default)s")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws (default: %(default)s)")
    parser.add_argument(
        "--stall", type=float, default=DEFAULT_STALL, help="seconds a slow body stalls (default: %(default)s)"
    )
    for name in FAULTS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=0.0, help="rate per request, 0 to 1")
    args = parser.parse_args(argv)
    try:
        rates = FaultRates(stall=args.stall, **{name: getattr(args, name) for name in FAULTS})
    except ValueError as exc:
        parser.error(str(exc))
    print(f"S3 fault proxy on http://{args.host}:{args.port} -> {args.upstream}: {asdict(rates)}", flush=True)
    run_until_interrupted(serve(S3FaultProxy(args.upstream, rates, seed=args.seed), args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
