"""The S3 emulator runs as a real process on a free port, creates its buckets and frees the port when stopped."""

from __future__ import annotations

import socket

import pytest

from infra.ports import LOOPBACK, free_port, is_listening
from infra.s3_emulator import S3Emulator
from infra.service_process import ServiceStartError


def test_emulator_answers_s3_requests_and_creates_its_buckets(tmp_path):
    with S3Emulator(tmp_path, buckets=["lake", "raw-data"]) as emulator:
        client = emulator.client()
        client.put_object(Bucket="lake", Key="warehouse/t/part-0", Body=b"rows")

        names = {b["Name"] for b in client.list_buckets()["Buckets"]}
        body = client.get_object(Bucket="lake", Key="warehouse/t/part-0")["Body"].read()

    assert names == {"lake", "raw-data"}
    assert body == b"rows"
    assert emulator.endpoint_url == f"http://{LOOPBACK}:{emulator.port}"


def test_stopped_emulator_frees_its_port(tmp_path):
    emulator = S3Emulator(tmp_path)
    emulator.start()
    assert is_listening(emulator.port)

    emulator.stop()

    assert not emulator.running
    assert not is_listening(emulator.port)
    with socket.socket() as sock:
        sock.bind((LOOPBACK, emulator.port))  # raises if anything still holds it


def test_emulator_that_cannot_bind_reports_its_log_tail(tmp_path):
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, port))
        squatter.listen()
        emulator = S3Emulator(tmp_path, port=port)

        with pytest.raises(ServiceStartError, match="exited with code") as failure:
            emulator.start(timeout=30)

    assert "address already in use" in str(failure.value).lower()


def test_session_emulator_serves_the_shared_client(s3_emulator, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"v")

    assert s3_client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert is_listening(s3_emulator.port)
