"""The Airflow 3.3 UI driven by Playwright in Debian's Chromium, as an on-call engineer clicks through it.

Only what a person sees and does: log in with the form, open a DAG, press Trigger, fill the form, wait for the run's
state on its page, read the task's log and XCom, open the navigation's "Cache" page. Every step can save a
screenshot under ``docs/img/runbook/`` so the runbook shows what the UI really looks like.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import Browser, FrameLocator, Locator, Page, Playwright, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from infra.cache_process import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium in a sandbox-less container, with nothing reaching out to the network on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO_ROOT / "docs" / "img" / "runbook"
RUN_TIMEOUT = 240.0
RELOAD_EVERY = 20.0


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless (Playwright's own browser downloads are not used)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@dataclass
class AirflowUi:
    """One browser tab on the Airflow UI at ``url``."""

    page: Page
    url: str

    def shot(self, name: str, target: Page | Locator | None = None) -> Path:
        """Save a screenshot of the page (or of one element) as ``docs/img/runbook/<name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        (target or self.page).screenshot(path=str(path))
        return path

    def log_in(self, username: str, password: str) -> None:
        """Fill the sign-in form and wait for the home page."""
        self.page.goto(self.url)
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.url}/")

    def open_trigger_form(self, dag_id: str, *, navigate: bool = True) -> Locator:
        """DAGs -> ``dag_id`` -> Trigger: the trigger dialog (``navigate=False``: already on the DAG's page)."""
        if navigate:
            self.page.goto(f"{self.url}/dags/{dag_id}")
        self.page.wait_for_url(f"{self.url}/dags/{dag_id}")
        self.page.get_by_role("button", name="Trigger").first.click()
        dialog = self.page.get_by_role("dialog")
        expect(dialog.get_by_text("Run Parameters")).to_be_visible()
        return dialog

    def fill_purge_form(self, dialog: Locator, *, target: str, dry_run: bool, paths: list[str]) -> None:
        """The ``cache_purge`` form's three fields, as typed by a person."""
        dialog.locator("input[name='element_target']").fill(target)
        switch = dialog.locator("input[name='element_dry_run']")
        if switch.is_checked() != dry_run:
            # The checkbox is hidden behind Chakra's switch: click the switch a person sees.
            switch.locator("xpath=..").click()
        expect(switch).to_be_checked(checked=dry_run)
        dialog.locator("textarea[name='element_paths']").fill("\n".join(paths))

    def trigger(self, dialog: Locator) -> None:
        """Press the dialog's Trigger button."""
        dialog.get_by_role("button", name="Trigger").click()

    def wait_for_run(self, dag_id: str, timeout: float = RUN_TIMEOUT) -> tuple[str, str]:
        """After a trigger, the UI opens the new run's page: wait there until the run ends; its (run_id, state)."""
        self.page.wait_for_url(re.compile(rf".*/dags/{dag_id}/runs/.+"), timeout=60_000)
        run_id = self.page.url.split("/runs/", 1)[1].split("/", 1)[0]
        deadline = time.monotonic() + timeout
        # The run's state badge stands beside its id, in the heading's row.
        header = self.page.locator("h2", has_text=run_id).first.locator("xpath=..")
        reload_at = time.monotonic() + RELOAD_EVERY
        while time.monotonic() < deadline:
            text = header.inner_text() if header.count() else ""
            for state in ("Success", "Failed"):
                if state in text:
                    return run_id, state.lower()
            time.sleep(2)
            # The page polls a running run itself; a reload now and then is what a person does when it seems stuck,
            # and on a loaded machine it may be slow: the next poll looks again.
            if time.monotonic() > reload_at:
                reload_at = time.monotonic() + RELOAD_EVERY
                with contextlib.suppress(PlaywrightTimeoutError):
                    self.page.reload(timeout=60_000)
        raise AssertionError(f"run {run_id} of {dag_id} did not end within {timeout:.0f}s")

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """The text of a task's log as its Logs tab shows it."""
        self.page.goto(f"{self.url}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}")
        # The log ends with its "Post Execute" group once the task has finished.
        expect(self.page.get_by_text("Post Execute")).to_be_visible(timeout=30_000)
        return self.page.locator("body").inner_text()

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Locator:
        """The task's Storage -> XCom tab with every value expanded; the table of XComs."""
        self.page.goto(f"{self.url}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/task-state-store")
        self.page.get_by_text("XCom", exact=True).click()
        table = self.page.locator("table")
        expect(table.get_by_text("return_value")).to_be_visible()
        # Values start collapsed to one line each.
        self.page.get_by_role("button", name="Expand all extra JSON").click()
        return table

    def status_page(self, conn_id: str | None = None) -> FrameLocator | Page:
        """The navigation's "Cache" entry: the status page inside the UI's frame, for ``lakecache_default``. For
        another connection, the page's own address with ``?conn_id=``, as a link from a runbook opens it."""
        if conn_id is not None:
            self.page.goto(f"{self.url}/lakecache/?{urlencode({'conn_id': conn_id})}")
            expect(self.page.locator("#verdict")).to_be_visible(timeout=30_000)
            return self.page
        self.page.goto(self.url)
        self.page.get_by_role("link", name="Cache", exact=True).click()
        frame = self.page.frame_locator("iframe")
        expect(frame.locator("#verdict")).to_be_visible(timeout=30_000)
        return frame
