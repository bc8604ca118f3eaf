"""AWS test helpers: clients for the emulator, an Auto Scaling group and an EMR cluster, and AWS-shaped faults.

``AwsFaultyProxy`` generalises ``tests.support.faulty_proxy.FaultyProxy`` (whose faults are S3 errors) to the two
other protocols our backends speak: the query protocol of Auto Scaling (an XML ``ErrorResponse``) and the JSON
protocol of EMR (``{"__type": ...}``), so that botocore parses an injected ``Throttling`` exactly as from AWS.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from infra.s3_emulator import EMULATOR_CREDENTIALS
from tests.support.faulty_proxy import FaultyProxy

REGION = EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"]


def client(service: str, endpoint_url: str) -> Any:
    """A boto3 client for the emulator with botocore's own retries off, as the scalers make them."""
    import boto3
    from botocore.config import Config

    session: Any = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


def create_group(endpoint_url: str, *, min_size: int = 1, max_size: int = 6, desired: int = 1) -> str:
    """A new Auto Scaling group on the emulator (a launch configuration of its own); returns its name."""
    name = f"etl-{uuid.uuid4().hex[:8]}"
    autoscaling = client("autoscaling", endpoint_url)
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=name, ImageId="ami-12c6146b", InstanceType="m5.large"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=name,
        MinSize=min_size,
        MaxSize=max_size,
        DesiredCapacity=desired,
        AvailabilityZones=[f"{REGION}a"],
    )
    return name


def create_emr_cluster(endpoint_url: str, *, core: int = 2, task: int = 1) -> str:
    """A new EMR cluster (MASTER, CORE and TASK instance groups) on the emulator; returns its id."""
    groups = [
        {"Name": "master", "InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
        {"Name": "core", "InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": core},
        {"Name": "task", "InstanceRole": "TASK", "InstanceType": "m5.xlarge", "InstanceCount": task},
    ]
    answer = client("emr", endpoint_url).run_job_flow(
        Name=f"etl-{uuid.uuid4().hex[:8]}",
        ReleaseLabel="emr-7.0.0",
        Instances={"InstanceGroups": groups, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        VisibleToAllUsers=True,
    )
    return str(answer["JobFlowId"])


class AwsFaultyProxy(FaultyProxy):
    """Forwards to ``upstream``, answering the next ``faults`` calls of ``action`` (any if None) with an AWS error.

    The error is ``code`` with HTTP ``status`` in the shape of the caller's protocol: a query-protocol
    ``ErrorResponse`` (Auto Scaling) or a JSON-protocol body (EMR, recognised by its ``X-Amz-Target`` header).
    ``faulted`` lists the actions answered with a fault.
    """

    def __init__(
        self, upstream: str, *, faults: int = 0, status: int = 400, code: str = "Throttling", action: str | None = None
    ) -> None:
        super().__init__(upstream)  # the base class injects nothing: it only forwards
        self.status, self.code, self.action = status, code, action
        self.faulted: list[str] = []
        self._aws_faults = faults
        self._aws_lock = threading.Lock()

    def __enter__(self) -> AwsFaultyProxy:
        self.start()
        return self

    def inject(self, faults: int) -> None:
        """Answer the next ``faults`` calls of ``action`` with the fault."""
        with self._aws_lock:
            self._aws_faults = faults

    def _take_aws_fault(self, action: str) -> bool:
        with self._aws_lock:
            if self._aws_faults <= 0 or (self.action is not None and action != self.action):
                return False
            self._aws_faults -= 1
            self.faulted.append(action)
            return True

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()  # aiohttp keeps it: the base class reads it again to forward it
        target = request.headers.get("X-Amz-Target", "")
        action = target.rsplit(".", 1)[-1] if target else parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        if not self._take_aws_fault(action):
            return await super()._handle(request)
        if target:
            payload = json.dumps({"__type": self.code, "message": "injected by the AWS faulty proxy"})
            return web.Response(status=self.status, text=payload, content_type="application/x-amz-json-1.1")
        xml = (
            '<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type>'
            f"<Code>{self.code}</Code><Message>Rate exceeded (injected)</Message></Error>"
            "<RequestId>aws-faulty-proxy</RequestId></ErrorResponse>"
        )
        return web.Response(status=self.status, text=xml, content_type="text/xml")
