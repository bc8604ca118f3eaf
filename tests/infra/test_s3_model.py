"""The S3 latency model: it passes bytes and errors through untouched, delays first bytes and caps bandwidth.

Timing assertions are lower bounds only (a loaded machine can only make things slower), so they do not flake.
"""

from __future__ import annotations

import http.client
import os
import time

import pytest
from botocore.exceptions import ClientError

from infra.ports import LOOPBACK, free_port
from infra.s3_emulator import s3_client as client_for
from infra.s3_model import BURST, S3Model, S3ModelConfig, TokenBucket, main

KEY = "data/object.bin"


@pytest.fixture
def payload(s3_client, bucket):
    """A 3 MiB object of random bytes at ``KEY`` in ``bucket``."""
    data = os.urandom(3 * 2**20)
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=data)
    return data


def test_proxied_objects_ranges_listings_and_heads_are_the_emulators(s3_emulator, bucket, payload, tmp_path):
    with S3Model(s3_emulator.endpoint_url, tmp_path, latency_ms=1, bandwidth_mbps=0) as model:
        client = client_for(model.url)

        whole = client.get_object(Bucket=bucket, Key=KEY)["Body"].read()
        part = client.get_object(Bucket=bucket, Key=KEY, Range="bytes=1000-70999")
        head = client.head_object(Bucket=bucket, Key=KEY)
        listed = client.list_objects_v2(Bucket=bucket)["Contents"]

        assert whole == payload
        assert part["Body"].read() == payload[1000:71000]
        assert part["ContentRange"] == f"bytes 1000-70999/{len(payload)}"
        assert head["ContentLength"] == len(payload)
        assert [(o["Key"], o["Size"]) for o in listed] == [(KEY, len(payload))]


def test_uploads_through_the_model_reach_the_emulator(s3_emulator, s3_client, bucket, tmp_path):
    with S3Model(s3_emulator.endpoint_url, tmp_path, latency_ms=1) as model:
        client_for(model.url).put_object(Bucket=bucket, Key="up.bin", Body=b"written through the model")

    assert s3_client.get_object(Bucket=bucket, Key="up.bin")["Body"].read() == b"written through the model"


def test_s3_errors_pass_through_with_their_status_and_code(s3_emulator, bucket, tmp_path):
    with S3Model(s3_emulator.endpoint_url, tmp_path, latency_ms=1) as model:
        client = client_for(model.url)

        with pytest.raises(ClientError) as missing_key:
            client.get_object(Bucket=bucket, Key="no/such/key")
        with pytest.raises(ClientError) as missing_bucket:
            client.list_objects_v2(Bucket="no-such-bucket-for-the-model")
        with pytest.raises(ClientError) as missing_head:
            client.head_object(Bucket=bucket, Key="no/such/key")

    assert missing_key.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert missing_key.value.response["Error"]["Code"] == "NoSuchKey"
    assert missing_bucket.value.response["Error"]["Code"] == "NoSuchBucket"
    assert missing_head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_an_unreachable_upstream_is_a_503_service_unavailable(tmp_path):
    with S3Model(f"http://{LOOPBACK}:{free_port()}", tmp_path, latency_ms=1) as model:
        connection = http.client.HTTPConnection(LOOPBACK, model.port, timeout=30)
        connection.request("GET", "/bucket/key")
        response = connection.getresponse()
        body = response.read()
        connection.close()

    assert response.status == 503
    assert b"<Code>ServiceUnavailable</Code>" in body


def test_every_request_waits_at_least_the_first_byte_latency(s3_emulator, bucket, payload, tmp_path):
    latency_ms = 120
    with S3Model(s3_emulator.endpoint_url, tmp_path, latency_ms=latency_ms, bandwidth_mbps=0) as model:
        client = client_for(model.url)
        client.head_object(Bucket=bucket, Key=KEY)  # the connection is open: only the model's delay is left
        times = []
        for _ in range(3):
            started = time.perf_counter()
            client.get_object(Bucket=bucket, Key=KEY, Range="bytes=0-99")["Body"].read()
            times.append(time.perf_counter() - started)

    assert min(times) >= latency_ms / 1000


def test_one_connection_is_capped_at_the_configured_bandwidth(s3_emulator, bucket, payload, tmp_path):
    bandwidth_mbps = 20
    with S3Model(s3_emulator.endpoint_url, tmp_path, latency_ms=0, bandwidth_mbps=bandwidth_mbps) as model:
        client = client_for(model.url)
        started = time.perf_counter()
        body = client.get_object(Bucket=bucket, Key=KEY)["Body"].read()
        elapsed = time.perf_counter() - started

    assert body == payload
    # The first BURST bytes may leave at once; the rest no faster than the cap.
    assert elapsed >= (len(payload) - BURST) / (bandwidth_mbps * 1e6)


def test_token_bucket_lets_a_burst_through_then_paces_to_its_rate():
    bucket = TokenBucket(rate=1000.0, burst=100, now=0.0)

    assert bucket.take(100, now=0.0) == 0.0
    assert bucket.take(100, now=0.0) == pytest.approx(0.1)
    # The sender slept those 0.1 s: the debt is paid and the next 100 bytes wait another 0.1 s.
    assert bucket.take(100, now=0.1) == pytest.approx(0.1)
    # A long pause refills the bucket to its burst, no further.
    assert bucket.take(100, now=10.0) == 0.0
    assert bucket.take(1, now=10.0) == pytest.approx(0.001)


def test_configuration_rejects_negative_values_on_the_command_line(capsys):
    with pytest.raises(ValueError):
        S3ModelConfig(latency=-0.001)
    with pytest.raises(SystemExit) as exit_:
        main(["--upstream", "http://127.0.0.1:1", "--port", "1", "--bandwidth-mbps", "-5"])

    assert exit_.value.code == 2
    assert "must not be negative" in capsys.readouterr().err
