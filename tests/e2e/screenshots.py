"""The README's screenshots, taken from a real `rates up` on the demo data in headless Chromium.

Run with ``scripts/screenshots``: starts the stack in a temporary data directory on a free
port, opens the lane explorer as a new user would (the example lane), uploads one good and one
bad batch through the console, and writes ``docs/lane-explorer.png`` and
``docs/batch-console.png``. Stops everything it started.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from rates.devstack import LocalPostgres, free_port
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, rates_env, wait_for

DOCS = Path(__file__).resolve().parents[2] / "docs"
VIEWPORT = {"width": 1280, "height": 1000}
GOOD = "orig_code,dest_code,day,price\nASRNG,AUQGT,2021-04-01,1500\nASRNG,AUQGT,2021-04-01,1620\n"
BAD = (
    "orig_code,dest_code,day,price\n"
    "ASRNG,AUQGT,2021-04-01,1500\n"
    "QQQQQ,AUQGT,2021-04-01,1500\n"
    "ASRNG,AUQGT,2021-02-30,1600\n"
    "ASRNG,AUQGT,2021-04-02,-5\n"
)


def lane_explorer(page: Page, base: str) -> None:
    page.goto(f"{base}/")
    expect(page.locator("#days tbody tr").first).to_be_visible()
    page.wait_for_timeout(300)  # the chart's first paint
    page.screenshot(path=str(DOCS / "lane-explorer.png"))


def batch_console(page: Page, base: str, token: str, files: Path) -> None:
    page.goto(f"{base}/console/batches")
    page.locator("#token").fill(token)
    page.locator("#token").press("Enter")
    for name, text, status in (
        ("prices-good.csv", GOOD, "succeeded"),
        ("prices-bad.csv", BAD, "rejected"),
    ):
        path = files / name
        path.write_text(text)
        page.locator("#file").set_input_files(path)
        expect(page.locator("#detail-title .badge")).to_have_text(status, timeout=30_000)
        expect(page.locator("#batch-attempts")).not_to_contain_text("running")
    page.screenshot(path=str(DOCS / "batch-console.png"), full_page=True)


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rates-screenshots-", dir="/tmp"))
    root.chmod(0o755)  # reachable by the unprivileged PostgreSQL user when run as root
    data_dir = root / "state"
    port = free_port()
    env = rates_env(RATES_DATA_DIR=str(data_dir), RATES_PORT=str(port), RATES_WORKERS="1")
    log = (root / "up.log").open("wb")
    stack = subprocess.Popen(
        [sys.executable, "-m", "rates", "up"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/readyz", timeout_s=120)
        token = (data_dir / "ingest-token").read_text().strip()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            lane_explorer(page, base)
            batch_console(page, base, token, root)
            browser.close()
        print(f"wrote {DOCS / 'lane-explorer.png'} and {DOCS / 'batch-console.png'}")
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(timeout=60)
        LocalPostgres(data_dir / "postgres").stop()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
