"""``clusterctl`` against an Auto Scaling group on the emulator: status, plan, scale; one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.s3_emulator import EMULATOR_CREDENTIALS
from lakecache_airflow.scaling.cli import main
from tests.plugins.airflow_home import REPO_ROOT
from tests.plugins.lakecache_airflow.scaling.aws_support import client, create_group


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's fixed credentials, as the CLI finds them in AWS's usual environment variables."""
    for key, value in EMULATOR_CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def hhmm(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def policy_file(tmp_path: Path, endpoint_url: str, group: str, *, min_nodes: int = 1, max_nodes: int = 6) -> Path:
    """A policy whose daily window is open now (UTC) with target 4, and the group as its backend."""
    now = datetime.now(UTC)
    path = tmp_path / "policy.toml"
    path.write_text(
        f"""
min_nodes = {min_nodes}
max_nodes = {max_nodes}
cooldown = "10m"
scale_in_cooldown = "30m"

[[windows]]
name = "peak"
start = "{hhmm(now - timedelta(hours=1))}"
end = "{hhmm(now + timedelta(hours=1))}"
target = 4

[backend]
kind = "asg"
retry = {{ attempts = 3, base = 0.01, cap = 0.05 }}

[backend.asg]
group = "{group}"
endpoint_url = "{endpoint_url}"
"""
    )
    return path


def desired(endpoint_url: str, group: str) -> int:
    answer = client("autoscaling", endpoint_url).describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return int(answer["AutoScalingGroups"][0]["DesiredCapacity"])


def test_status_reports_the_group_in_text_and_json(s3_emulator, capsys: pytest.CaptureFixture[str]) -> None:
    group = create_group(s3_emulator.endpoint_url, desired=2)
    flags = ["--backend", "asg", "--group", group, "--endpoint-url", s3_emulator.endpoint_url]
    assert main([*flags, "status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Auto Scaling group: 2 nodes serving, 2 desired\n")
    assert "note: no Spark master to read demand from" in out
    assert main([*flags, "--json", "status"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["state"]["nodes"], report["state"]["max_nodes"]) == (2, 6)


def test_plan_says_what_the_policy_would_do_and_why_without_doing_it(
    s3_emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = create_group(s3_emulator.endpoint_url, desired=1)
    config = policy_file(tmp_path, s3_emulator.endpoint_url, group)
    assert main(["--config", str(config), "plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "scale_out 1 -> 4 (dry run)"
    assert any("window 'peak'" in line and "is open: at least 4 nodes" in line for line in lines)
    assert desired(s3_emulator.endpoint_url, group) == 1
    assert main(["--config", str(config), "--json", "plan"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert (decision["action"], decision["target"], decision["windows"]) == ("scale_out", 4, ["peak"])


def test_scale_applies_records_the_change_and_plan_then_respects_the_cooldown(
    s3_emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = create_group(s3_emulator.endpoint_url, desired=1)
    config, memory = policy_file(tmp_path, s3_emulator.endpoint_url, group), tmp_path / "last-action.json"
    assert main(["--config", str(config), "--last-action", str(memory), "scale", "--to", "2"]) == 0
    assert capsys.readouterr().out.startswith("scaled the asg cluster: 1 -> 2 nodes (2 now)")
    assert desired(s3_emulator.endpoint_url, group) == 2
    assert json.loads(memory.read_text())["target"] == 2
    assert main(["--config", str(config), "--last-action", str(memory), "plan"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hold 2 -> 2 (dry run)") and "cooldown: the last change was at" in out
    assert main(["--config", str(config), "scale", "--to", "3", "--dry-run"]) == 0
    assert "would scale the Auto Scaling group from 2 to 3 nodes (dry run)" in capsys.readouterr().out
    assert desired(s3_emulator.endpoint_url, group) == 2


def test_a_target_outside_the_policys_bounds_needs_force(
    s3_emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = create_group(s3_emulator.endpoint_url, max_size=10, desired=1)
    config = policy_file(tmp_path, s3_emulator.endpoint_url, group, max_nodes=6)
    assert main(["--config", str(config), "scale", "--to", "8"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "clusterctl: error: --to 8 is outside the policy's [min_nodes, max_nodes] = [1, 6] (--force to do it anyway)\n"
    )
    assert desired(s3_emulator.endpoint_url, group) == 1
    assert main(["--config", str(config), "scale", "--to", "8", "--force"]) == 0
    assert desired(s3_emulator.endpoint_url, group) == 8


def test_errors_are_one_line_with_an_exit_code(s3_emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("min_nodes = 5\nmax_nodes = 3\n")
    assert main(["--config", str(bad), "plan"]) == 2
    assert capsys.readouterr().err == f"clusterctl: error: {bad}: min_nodes (5) is above max_nodes (3)\n"
    flags = ["--backend", "asg", "--group", "no-such-group", "--endpoint-url", s3_emulator.endpoint_url]
    assert main([*flags, "status"]) == 1
    assert capsys.readouterr().err == "clusterctl: error: no Auto Scaling group named 'no-such-group'\n"
    assert main(["--backend", "spark", "--state-dir", str(tmp_path), "status"]) == 1
    assert capsys.readouterr().err.startswith(f"clusterctl: error: no Spark standalone cluster in {tmp_path}")
    assert main(["--backend", "asg", "status"]) == 2
    assert capsys.readouterr().err == "clusterctl: error: backend.asg: group is required\n"
    assert main([*flags, "plan"]) == 2
    assert capsys.readouterr().err == "clusterctl: error: plan needs a policy: --config FILE\n"


def test_the_command_line_shows_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('min_nodes = 1\nmax_nodes = 3\ntimezone = "Nowhere/Land"\n')
    result = subprocess.run(
        [sys.executable, "-m", "lakecache_airflow.scaling.cli", "--config", str(bad), "plan"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"clusterctl: error: {bad}: timezone: unknown time zone 'Nowhere/Land' (use an IANA name like 'Europe/Paris')"
    ]
