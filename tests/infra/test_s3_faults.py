"""The S3 fault proxy: each fault as a client sees it, counted; no fault at rate 0; draws repeat with their seed."""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from infra.ports import LOOPBACK
from infra.s3_emulator import S3Emulator
from infra.s3_emulator import s3_client as client_for
from infra.s3_faults import FAULTS, FaultRates, S3FaultProxy, S3Faults, main

KEY = "data/object.bin"


@pytest.fixture
def payload(s3_client, bucket) -> bytes:
    """A 1 MiB object of random bytes at ``KEY`` in ``bucket``."""
    data = os.urandom(2**20)
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=data)
    return data


@pytest.fixture
def faults(s3_emulator: S3Emulator, tmp_path) -> Iterator[S3Faults]:
    """The proxy in front of the emulator, every fault off: a test sets the rates it wants."""
    with S3Faults(s3_emulator.endpoint_url, tmp_path, FaultRates(), seed=1) as proxy:
        yield proxy


def get(
    proxy: S3Faults, bucket: str, timeout: float = 30
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    """A raw GET of ``KEY`` (presigned: the emulator checks signatures) and its connection, to see the bytes as sent."""
    url = client_for(proxy.url).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY})
    connection = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=timeout)
    connection.request("GET", url.removeprefix(proxy.url))
    return connection.getresponse(), connection


def test_at_rate_zero_every_request_passes_through_untouched(faults, bucket, payload):
    client = client_for(faults.url)

    client.put_object(Bucket=bucket, Key="up.bin", Body=b"through the proxy")
    assert client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == payload
    assert client.get_object(Bucket=bucket, Key=KEY, Range="bytes=10-99")["Body"].read() == payload[10:100]
    assert client.get_object(Bucket=bucket, Key="up.bin")["Body"].read() == b"through the proxy"

    report = faults.report()
    assert report["requests"] == 4
    assert report["faults"] == dict.fromkeys(FAULTS, 0)


@pytest.mark.parametrize(
    ("fault", "status", "code"), [("server_error", 500, "InternalError"), ("slow_down", 503, "SlowDown")]
)
def test_error_faults_answer_s3_error_documents_without_forwarding(faults, s3_client, bucket, fault, status, code):
    faults.set_rates(FaultRates(**{fault: 1.0}))
    connection = http.client.HTTPConnection(LOOPBACK, faults.port, timeout=30)
    connection.request("PUT", f"/{bucket}/never-written", body=b"x")
    response = connection.getresponse()
    body = response.read()
    connection.close()

    assert response.status == status
    assert f"<Code>{code}</Code>".encode() in body
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket)  # the PUT never reached S3
    assert faults.counts()[fault] == 1


def test_a_reset_closes_the_connection_before_any_answer(faults, bucket, payload):
    faults.set_rates(FaultRates(reset=1.0))

    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        get(faults, bucket)
    assert faults.counts()["reset"] == 1


def test_a_cut_body_announces_the_whole_length_and_ends_early(faults, bucket, payload):
    faults.set_rates(FaultRates(cut_body=1.0))
    response, connection = get(faults, bucket)

    assert response.status == 200
    assert int(response.headers["Content-Length"]) == len(payload)
    with pytest.raises(http.client.IncompleteRead) as short:
        response.read()
    connection.close()
    assert 0 < len(short.value.partial) < len(payload)
    assert short.value.partial == payload[: len(short.value.partial)]  # what did arrive is S3's bytes
    assert faults.counts()["cut_body"] == 1


def test_a_slow_body_stalls_longer_than_a_read_timeout(faults, bucket, payload):
    faults.set_rates(FaultRates(slow_body=1.0, stall=2.0))
    response, connection = get(faults, bucket, timeout=0.5)

    assert response.status == 200
    with pytest.raises((TimeoutError, socket.timeout, http.client.IncompleteRead)):
        response.read()
    connection.close()
    assert faults.counts()["slow_body"] == 1


def test_body_faults_spare_heads_and_errors_are_not_counted_when_not_injected(faults, bucket, payload):
    faults.set_rates(FaultRates(cut_body=0.5, slow_body=0.5))
    client = client_for(faults.url)

    for _ in range(5):
        assert client.head_object(Bucket=bucket, Key=KEY)["ContentLength"] == len(payload)

    assert faults.report()["requests"] == 5
    assert faults.counts() == dict.fromkeys(FAULTS, 0)


def test_rates_change_while_running_and_bad_ones_are_refused(faults):
    faults.set_rates(FaultRates(slow_down=0.25, reset=0.5))
    assert faults.report()["rates"]["reset"] == 0.5
    faults.faults_off()
    assert faults.report()["rates"]["slow_down"] == 0.0

    request = urllib.request.Request(faults.url + "/_faults", data=json.dumps({"explode": 1}).encode(), method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert "unknown fault settings: explode" in refused.value.read().decode()


def test_draws_repeat_with_their_seed_and_follow_the_rates():
    rates = FaultRates(server_error=0.1, slow_down=0.2, reset=0.1, cut_body=0.1, slow_body=0.1)
    one = S3FaultProxy("http://upstream", rates, seed=42)
    two = S3FaultProxy("http://upstream", rates, seed=42)

    draws = [one.draw() for _ in range(5000)]

    assert draws == [two.draw() for _ in range(5000)]
    assert draws.count(None) == pytest.approx(0.4 * 5000, rel=0.1)
    assert draws.count("slow_down") == pytest.approx(0.2 * 5000, rel=0.15)


def test_rates_outside_zero_to_one_or_adding_up_past_one_are_refused(capsys):
    with pytest.raises(ValueError, match="add up to at most 1"):
        FaultRates(server_error=0.6, slow_down=0.6)
    with pytest.raises(ValueError):
        FaultRates(reset=-0.1)
    with pytest.raises(SystemExit) as exit_:
        main(["--upstream", "http://127.0.0.1:1", "--port", "1", "--cut-body", "2"])

    assert exit_.value.code == 2
    assert "add up to at most 1" in capsys.readouterr().err
