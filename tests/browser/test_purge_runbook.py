"""docs/runbooks/purge.md followed word for word in a real browser: the Airflow UI, the cache_purge form, the
Cache status page. Screenshots land in docs/img/runbook/, where the runbook shows them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from infra.cache_process import CacheProcess
from tests.browser.airflow_ui import AirflowUi
from tests.browser.conftest import DAYS, DISK_CAPACITY, day_path
from tests.support.admin import AdminClient

pytestmark = [pytest.mark.browser, pytest.mark.airflow]

DAG_ID = "cache_purge"


def _usage(admin: AdminClient) -> float:
    status = admin.ok("GET", "status")
    return status["used_bytes"] / status["capacity_bytes"]


def _usage_after(summary: str, log: str) -> float:
    """The usage after the purge, from the operator's summary line in the task log (which must start at 62.5%)."""
    found = re.search(summary + r"; usage 62\.5% -> (\d+\.\d)%", log)
    assert found, log[-2000:]
    return float(found.group(1))


@pytest.fixture(scope="module")
def full(ui_admin: AdminClient) -> float:
    """Both days loaded: the cache at 62.5%, above the form's default target of 0.6."""
    job = ui_admin.ok("POST", "load", {"paths": [day_path(day) for day in DAYS]})
    ui_admin.wait_job(job["id"])
    usage = _usage(ui_admin)
    assert usage == sum(DAYS.values()) / DISK_CAPACITY
    return usage


def test_the_purge_runbook_works_in_the_browser(ui: AirflowUi, ui_admin: AdminClient, full: float) -> None:
    # 1. Look first: the Cache page in the navigation shows the cache above the target we are about to ask for.
    status = ui.status_page()
    expect(status.locator("#usage-bar")).to_have_attribute("aria-valuenow", "62.5")
    expect(status.locator("#totals")).to_contain_text("(62.5%)")
    ui.shot("status-page-before")

    # 2-3. The Cache page's link to the cache_purge DAG, then Trigger: a dry run (the form's default), target 0.5.
    status.locator("#purge-link").click()
    form = ui.open_trigger_form(DAG_ID, navigate=False)
    ui.fill_purge_form(form, target="0.5", dry_run=True, paths=[])
    ui.shot("trigger-form-dry-run", form)
    ui.trigger(form)
    run_id, state = ui.wait_for_run(DAG_ID)
    assert state == "success"
    log = ui.task_log(DAG_ID, run_id, "purge")
    assert _usage_after(r"Would free \d+ bytes from \d+ files?", log) <= 50.0
    ui.shot("dry-run-log")
    xcom = ui.xcom(DAG_ID, run_id, "purge")
    expect(xcom).to_contain_text('"dry_run": true')
    expect(xcom).to_contain_text('"reached_target": true')
    ui.shot("dry-run-xcom")
    assert _usage(ui_admin) == full  # a dry run changes nothing

    # 4. The same target with dry_run off.
    form = ui.open_trigger_form(DAG_ID)
    ui.fill_purge_form(form, target="0.5", dry_run=False, paths=[])
    ui.trigger(form)
    run_id, state = ui.wait_for_run(DAG_ID)
    assert state == "success"
    log = ui.task_log(DAG_ID, run_id, "purge")
    assert _usage_after(r"Freed \d+ bytes from \d+ files?", log) <= 50.0
    expect(ui.xcom(DAG_ID, run_id, "purge")).to_contain_text('"purged": true')
    after = _usage(ui_admin)
    assert after <= 0.5

    # 5. Verify on the Cache page: usage dropped, and the purge is in the cache's own record.
    status = ui.status_page()
    expect(status.locator("#usage-bar")).to_have_attribute("aria-valuenow", f"{100 * after:.1f}")
    expect(status.locator("#purges")).to_contain_text("manual")
    ui.shot("status-page-after")


@pytest.mark.parametrize(
    ("target", "paths", "message", "shot"),
    [
        ("1.5", [], "1.5 is greater than the maximum of 1", "form-refuses-target"),
        ("0.5", ["warehouse/events"], "'warehouse/events' does not match", "form-refuses-relative-path"),
    ],
)
def test_a_bad_form_value_is_refused_and_nothing_runs(
    ui: AirflowUi, ui_admin: AdminClient, target: str, paths: list[str], message: str, shot: str
) -> None:
    purges = len(ui_admin.ok("GET", "purges")["purges"])
    form = ui.open_trigger_form(DAG_ID)
    ui.fill_purge_form(form, target=target, dry_run=False, paths=paths)
    ui.trigger(form)
    expect(form.get_by_text(message)).to_be_visible()
    expect(form).to_be_visible()  # the form stays open for the user to correct
    ui.shot(shot, form)
    assert len(ui_admin.ok("GET", "purges")["purges"]) == purges


def test_the_status_page_says_when_the_cache_is_unreachable(ui: AirflowUi, ui_cache: CacheProcess) -> None:
    ui_cache.stop()
    try:
        status = ui.status_page()
        expect(status.locator("#verdict")).to_contain_text("Unreachable")
        expect(status.locator("#read-at")).to_be_visible()
        ui.shot("status-page-unreachable")
    finally:
        ui_cache.start()
    status = ui.status_page()
    expect(status.locator("#verdict")).not_to_contain_text("Unreachable")
    expect(status.locator("#cluster")).to_have_count(0)  # a worker alone: nothing of a cluster
