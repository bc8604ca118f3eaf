"""The S3 emulator: moto's server, a real S3 (and Glue, ASG, EMR) HTTP endpoint on loopback, as a child process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from infra.ports import LOOPBACK, free_port
from infra.service_process import ProcessService, ServiceProcess, http_ok

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# moto accepts any credentials; fixed ones let every process of the stack share them through the environment.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
EMULATOR_MARKER = "moto.server"  # in the emulator's command line; identifies it by pid later


def s3_client(endpoint_url: str, *, attempts: int = 3) -> S3Client:
    """A boto3 S3 client for the emulator at ``endpoint_url`` (path-style addressing, the fixed credentials), making
    up to ``attempts`` attempts of each request."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": attempts, "mode": "standard"}),
    )


class S3Emulator(ProcessService):
    """moto's server on ``host``:``port`` (a free port if None), logging to ``state_dir/s3-emulator.log``.

    Its data lives in memory: every start begins with an empty S3 holding only ``buckets``. Use as a context
    manager, or call ``start()`` and ``stop()``.
    """

    _process: ServiceProcess

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        buckets: Iterable[str] = (),
        detach: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.buckets = tuple(buckets)
        self.log_path = state_dir / "s3-emulator.log"
        self._process = ServiceProcess(
            "S3 emulator",
            [sys.executable, "-m", EMULATOR_MARKER, "-H", host, "-p", str(self.port)],
            log_path=self.log_path,
            env={**os.environ, **EMULATOR_CREDENTIALS},
            detach=detach,
        )

    @property
    def endpoint_url(self) -> str:
        """The emulator's HTTP endpoint, e.g. ``http://127.0.0.1:5000``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the emulator, wait until it answers, and create ``buckets``.

        Raises ``infra.service_process.ServiceStartError`` (with its log tail) if it does not come up.
        """
        self._process.start(lambda: http_ok(self.endpoint_url + "/"), timeout)
        for bucket in self.buckets:
            self.create_bucket(bucket)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the emulator (SIGTERM, then SIGKILL); everything it stored is gone."""
        self._process.stop(timeout)

    def client(self) -> S3Client:
        """A boto3 S3 client for this emulator."""
        return s3_client(self.endpoint_url)

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name``."""
        self.client().create_bucket(Bucket=name)
