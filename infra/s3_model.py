"""A model of a real S3 in front of the local emulator: first-byte latency and a per-connection bandwidth cap.

The emulator answers on loopback in microseconds and streams as fast as memory copies, so a cold cache would look
free. A real S3 answers a GET's first byte in tens to hundreds of milliseconds and streams about 90 MB/s on one
connection (AWS, "Best Practices Design Patterns: Optimizing Amazon S3 Performance": small requests' median latency
is in the tens of milliseconds; plan one concurrent request per 85-90 MB/s). This proxy sits between a client and
the emulator and gives every response those two properties:

- first-byte latency: the response headers leave no earlier than ``latency`` after the request arrived. The request
  is forwarded at once, so the emulator's own service time counts toward the latency, as a real S3's would;
- bandwidth: each client connection's response bytes are paced by a token bucket at ``bandwidth`` bytes per second
  (MB = 10**6 bytes), whatever the number of requests on that connection.

Everything else passes through byte for byte: status, headers, bodies and S3 error documents.

From a shell: ``python -m infra.s3_model --upstream http://127.0.0.1:5000 --port 5001 --latency-ms 30
--bandwidth-mbps 90``. In a benchmark, ``with S3Model(emulator_url, state_dir) as s3: ... s3.url ...`` runs it as a
child process (off the benchmark's own interpreter, which is busy being a client).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from infra.ports import LOOPBACK, free_port, is_listening
from infra.service_process import ProcessService, ServiceProcess

DEFAULT_LATENCY_MS = 30.0
DEFAULT_BANDWIDTH_MBPS = 90.0
MODEL_MARKER = "infra.s3_model"  # in the child's command line

CHUNK = 64 * 1024
# A connection may send this much at once after a pause: one chunk, so a small GET is not slowed by pacing but a
# long body is paced from its second chunk on.
BURST = CHUNK
# Sleeping shorter than this is not worth a timer (uvloop's resolution is a millisecond): the debt is carried over
# to the next chunk instead, so the average rate stays exact.
MIN_SLEEP = 0.001

# Headers about one hop of the connection, not about the message; aiohttp sets its own.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"}
)
_UNREACHABLE_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
    "<Message>the S3 model cannot reach its upstream: {reason}</Message><RequestId>s3-model</RequestId></Error>"
)


@dataclass(frozen=True)
class S3ModelConfig:
    """The model's two parameters: ``latency`` in seconds before the first byte, ``bandwidth`` in bytes/s per
    connection (0 means uncapped)."""

    latency: float = DEFAULT_LATENCY_MS / 1000
    bandwidth: float = DEFAULT_BANDWIDTH_MBPS * 1e6

    def __post_init__(self) -> None:
        if self.latency < 0 or self.bandwidth < 0:
            raise ValueError("latency and bandwidth must not be negative")

    @classmethod
    def from_flags(cls, latency_ms: float, bandwidth_mbps: float) -> S3ModelConfig:
        """From the command line's units: milliseconds and MB/s (10**6 bytes)."""
        return cls(latency=latency_ms / 1000, bandwidth=bandwidth_mbps * 1e6)

    @property
    def latency_ms(self) -> float:
        """The first-byte latency in milliseconds, the command line's unit."""
        return self.latency * 1000

    @property
    def bandwidth_mbps(self) -> float:
        """The per-connection cap in MB/s (10**6 bytes), the command line's unit; 0 means uncapped."""
        return self.bandwidth / 1e6


class TokenBucket:
    """Paces one connection: ``rate`` bytes per second, at most ``burst`` bytes ahead of that rate.

    Tokens may go negative (a debt): ``take`` never refuses, it says how long to wait before sending, and a sender
    that overslept is repaid from the bucket, up to ``burst``.
    """

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def take(self, size: int, now: float) -> float:
        """Take ``size`` bytes' worth of tokens at time ``now``; returns the seconds to wait before sending them."""
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= size
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class S3ModelProxy:
    """The proxy's request handling, for an aiohttp application; ``upstream`` is the emulator's URL."""

    def __init__(self, upstream: str, config: S3ModelConfig) -> None:
        self.upstream = upstream.rstrip("/")
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        # Keyed by the client's (host, port): unique while the connection lives. Entries of closed connections are
        # pruned when idle; a reused port finds a bucket that has refilled, as a new connection's would be.
        self._buckets: dict[object, tuple[TokenBucket, float]] = {}

    def application(self) -> web.Application:
        """An aiohttp application forwarding every request to ``upstream``."""
        app = web.Application(client_max_size=6 * 1024**3)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _: web.Application) -> None:
        # Bodies pass through untouched (no decompression); no redirect is followed; no pool limit, so the model
        # never queues requests that a real S3 would serve in parallel.
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        )

    async def _close(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _bucket(self, request: web.Request, now: float) -> TokenBucket:
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        key = peer if peer is not None else id(request)
        found = self._buckets.get(key)
        bucket = found[0] if found is not None else TokenBucket(self.config.bandwidth, BURST, now)
        self._buckets[key] = (bucket, now)
        if len(self._buckets) > 4096:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60.0}
        return bucket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward ``request``; answer no earlier than the latency after it arrived, paced to the bandwidth."""
        loop = asyncio.get_running_loop()
        first_byte_at = loop.time() + self.config.latency
        assert self._session is not None
        body = await request.read()
        # The original Host goes upstream too: a signed request's signature covers it. "Expect: 100-continue" was
        # answered here already (the body is read), so it stays here.
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "expect"
        )
        try:
            upstream = await self._session.request(
                request.method,
                URL(self.upstream + request.raw_path, encoded=True),
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            await _sleep_until(first_byte_at)
            return web.Response(
                status=503, body=_UNREACHABLE_XML.format(reason=exc).encode(), content_type="application/xml"
            )
        # An upstream failure after this point truncates the body: the client sees a broken response, as from S3.
        try:
            await _sleep_until(first_byte_at)
            return await self._relay(request, upstream)
        finally:
            upstream.release()

    async def _relay(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        reply_headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=reply_headers)
        length = upstream.headers.get("Content-Length")
        if length is not None:
            # For HEAD this is the object's size, with no body to follow: pass it through as it is.
            response.content_length = int(length)
        await response.prepare(request)
        if request.method != "HEAD":
            loop = asyncio.get_running_loop()
            bucket = self._bucket(request, loop.time()) if self.config.bandwidth > 0 else None
            async for chunk in upstream.content.iter_chunked(CHUNK):
                if bucket is not None:
                    wait = bucket.take(len(chunk), loop.time())
                    if wait >= MIN_SLEEP:
                        await asyncio.sleep(wait)
                await response.write(chunk)
        await response.write_eof()
        return response


async def _sleep_until(deadline: float) -> None:
    wait = deadline - asyncio.get_running_loop().time()
    if wait > 0:
        await asyncio.sleep(wait)


async def serve(proxy: S3ModelProxy, host: str, port: int) -> None:
    """Serve ``proxy`` (the model, or a proxy built on it) on ``host``:``port`` until cancelled."""
    runner = web.AppRunner(proxy.application(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024, reuse_address=True).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


class ProxyProcess(ProcessService):
    """A proxy of ours in front of S3 (``python -m <module> <args>``) as a child process listening on loopback
    ``port``, logging to ``log_path``; use ``url`` in place of the S3 endpoint it forwards to."""

    _process: ServiceProcess

    def __init__(
        self, name: str, module: str, args: Sequence[str], *, port: int, log_path: Path, detach: bool = False
    ) -> None:
        self.port = port
        root = Path(__file__).resolve().parent.parent
        argv = [sys.executable, "-m", module, *args]
        self._process = ServiceProcess(name, argv, log_path=log_path, env=_child_env(root), cwd=root, detach=detach)

    @property
    def url(self) -> str:
        """The proxy's endpoint: an S3 endpoint URL for boto3, pyarrow or the cache's under store."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the proxy and wait until it accepts connections.

        Raises ``infra.service_process.ServiceStartError`` with its log tail if it does not come up.
        """
        self._process.start(lambda: is_listening(self.port), timeout)

    def stop(self) -> None:
        """Stop the proxy."""
        self._process.stop()


class S3Model(ProxyProcess):
    """The model as a child process on a free loopback port in front of ``upstream``; use ``url`` instead of it.

    Logs to ``state_dir/s3-model.log``. A context manager, or ``start()`` and ``stop()``. ``detach`` lets it outlive
    this process (``python -m infra.stack up``).
    """

    def __init__(
        self,
        upstream: str,
        state_dir: Path,
        *,
        latency_ms: float = DEFAULT_LATENCY_MS,
        bandwidth_mbps: float = DEFAULT_BANDWIDTH_MBPS,
        port: int | None = None,
        detach: bool = False,
    ) -> None:
        self.upstream = upstream
        self.config = S3ModelConfig.from_flags(latency_ms, bandwidth_mbps)
        self.latency_ms = latency_ms
        self.bandwidth_mbps = bandwidth_mbps
        port = port or free_port()
        args = ["--upstream", upstream, "--port", str(port)]
        args += ["--latency-ms", str(latency_ms), "--bandwidth-mbps", str(bandwidth_mbps)]
        super().__init__("S3 model", MODEL_MARKER, args, port=port, log_path=state_dir / "s3-model.log", detach=detach)


def _child_env(root: Path) -> dict[str, str]:
    # The child imports ``infra`` from the checkout whatever the caller's working directory.
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.s3_model --upstream URL --port P [--latency-ms 30] [--bandwidth-mbps 90]``."""
    parser = argparse.ArgumentParser(prog="python -m infra.s3_model", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--upstream", required=True, help="the S3 endpoint to forward to, e.g. http://127.0.0.1:5000")
    parser.add_argument("--host", default=LOOPBACK, help="default: %(default)s")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--latency-ms", type=float, default=DEFAULT_LATENCY_MS, help="first-byte latency (default: %(default)s)"
    )
    parser.add_argument(
        "--bandwidth-mbps",
        type=float,
        default=DEFAULT_BANDWIDTH_MBPS,
        help="per-connection cap in MB/s, 10**6 bytes; 0 = none (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        config = S3ModelConfig.from_flags(args.latency_ms, args.bandwidth_mbps)
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"S3 model on http://{args.host}:{args.port} -> {args.upstream}: "
        f"{args.latency_ms:g} ms to first byte, {args.bandwidth_mbps:g} MB/s per connection",
        flush=True,
    )
    run_until_interrupted(serve(S3ModelProxy(args.upstream, config), args.host, args.port))
    return 0


def run_until_interrupted(server: Coroutine[Any, Any, None]) -> None:
    """Run a proxy's ``serve`` coroutine on uvloop (asyncio's own loop without it) until Ctrl-C or SIGTERM."""
    try:
        try:
            import uvloop

            uvloop.run(server)
        except ImportError:
            asyncio.run(server)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
