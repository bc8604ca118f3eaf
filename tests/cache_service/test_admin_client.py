"""The admin client ``cachectl`` and ``CacheHook`` share: endpoints, requests, and what each kind of answer means.

The calls against a real cache are tested through its users (``tests/cache_service/cli/``,
``tests/plugins/lakecache_airflow/hooks/``); here, servers on loopback answer what a cache never would.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cache_service.admin_client import (
    AdminApiError,
    AdminClient,
    AdminEndpoint,
    CacheUnreachableError,
    InvalidEndpointError,
    NotAdminApiError,
    job_route,
)
from infra.ports import free_port

# --- endpoints and requests ----------------------------------------------------------------------------------------


def test_an_endpoint_keeps_scheme_host_port_and_path_and_hides_its_token() -> None:
    endpoint = AdminEndpoint.from_url(" http://[::1]:9870/cache/ ", token=" secret ")
    assert endpoint.url == "http://[::1]:9870/cache"
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("http", "::1", 9870)
    assert endpoint.token == "secret" and "secret" not in repr(endpoint)
    assert endpoint.is_loopback


@pytest.mark.parametrize(
    ("text", "bad_port"),
    [("cache.internal:9870", False), ("ftp://cache.internal", False), ("http://", False), ("http://h:port", True)],
)
def test_an_endpoint_that_is_not_http_host_port_is_refused(text: str, bad_port: bool) -> None:
    with pytest.raises(InvalidEndpointError) as caught:
        AdminEndpoint.from_url(text)
    assert caught.value.bad_port is bad_port and caught.value.text == text


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("cache.internal", False)],
)
def test_only_this_machine_counts_as_loopback(host: str, loopback: bool) -> None:
    assert AdminEndpoint(f"http://{'[' + host + ']' if ':' in host else host}:9870").is_loopback is loopback


def test_a_request_carries_json_and_the_bearer_token() -> None:
    request = AdminEndpoint("http://cache:9870", token="t").request("POST", "load", body={"paths": ["/w"]})
    assert request.url == "http://cache:9870/admin/v1/load"
    assert request.headers == {
        "Accept": "application/json",
        "Authorization": "Bearer t",
        "Content-Type": "application/json",
    }
    assert json.loads(request.body or b"") == {"paths": ["/w"]}
    listing = AdminEndpoint("http://cache:9870").request("GET", "ls", params={"path": "/w x"})
    assert listing.url == "http://cache:9870/admin/v1/ls?path=%2Fw+x" and listing.body is None
    assert "Authorization" not in listing.headers
    assert job_route("a/b c") == "jobs/a%2Fb%20c"


# --- answers -------------------------------------------------------------------------------------------------------

ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "/admin/v1/status": (200, "application/json", b'{"used_bytes": 0}'),
    "/admin/v1/stat": (404, "application/json", b'{"error": {"code": "NotFound", "message": "no such path: /x"}}'),
    "/admin/v1/load": (
        400,
        "application/json",
        b'{"error": {"code": "InvalidArgument", "message": "paths[0]: not absolute", "field": "paths[0]"}}',
    ),
    "/admin/v1/gateway": (502, "text/html", b"<html>Bad Gateway</html>"),
    "/admin/v1/page": (200, "text/html", b"<html>hello</html>"),
}


class _Canned(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, kind, body = ANSWERS[self.path.split("?")[0]]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass  # a test's output is no place for an access log


@pytest.fixture(scope="module")
def canned() -> Iterator[AdminClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield AdminClient(AdminEndpoint(f"http://127.0.0.1:{server.server_port}", timeout=5))
    server.shutdown()
    server.server_close()


def test_a_success_is_its_json(canned: AdminClient) -> None:
    assert canned.get("status") == {"used_bytes": 0}


def test_a_refusal_carries_status_code_message_and_field(canned: AdminClient) -> None:
    with pytest.raises(AdminApiError) as caught:
        canned.get("stat", path="/x")
    assert (caught.value.status, caught.value.code, caught.value.message, caught.value.field) == (
        404,
        "NotFound",
        "no such path: /x",
        None,
    )
    with pytest.raises(AdminApiError) as caught:
        canned.post("load", {"paths": ["x"]})
    assert (caught.value.status, caught.value.field) == (400, "paths[0]")
    assert caught.value.request.method == "POST" and caught.value.request.route == "load"


def test_whatever_answers_otherwise_is_not_the_admin_api(canned: AdminClient) -> None:
    with pytest.raises(NotAdminApiError) as caught:
        canned.get("gateway")
    assert caught.value.status == 502 and caught.value.is_error
    with pytest.raises(NotAdminApiError) as caught:
        canned.get("page")
    assert caught.value.status == 200 and not caught.value.is_error


# --- no answer -----------------------------------------------------------------------------------------------------


def test_a_closed_port_is_connection_refused() -> None:
    client = AdminClient(AdminEndpoint(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(CacheUnreachableError) as caught:
        client.get("status")
    assert caught.value.reason == "connection refused"


@pytest.fixture
def raw_server() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on loopback that answers each connection with the next of ``replies`` (None: stay silent)."""
    replies: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                reply = replies.pop(0) if replies else b""
                if reply:
                    conn.sendall(reply)
                else:
                    stop.wait(2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], replies
    stop.set()
    listener.close()


def test_a_server_that_does_not_speak_http_is_named_so(raw_server: tuple[int, list[bytes]]) -> None:
    port, replies = raw_server
    replies.append(b"SSH-2.0-OpenSSH_9.2\r\n")
    with pytest.raises(CacheUnreachableError) as caught:
        AdminClient(AdminEndpoint(f"http://127.0.0.1:{port}")).get("status")
    assert caught.value.reason == "not an HTTP answer (BadStatusLine)"


def test_a_silent_server_is_no_answer_within_the_timeout(raw_server: tuple[int, list[bytes]]) -> None:
    port, _ = raw_server
    with pytest.raises(CacheUnreachableError) as caught:
        AdminClient(AdminEndpoint(f"http://127.0.0.1:{port}", timeout=0.2)).get("status")
    assert caught.value.reason == "no answer within 0.2s"
    assert str(caught.value) == f"cannot reach the cache at http://127.0.0.1:{port}: no answer within 0.2s"
