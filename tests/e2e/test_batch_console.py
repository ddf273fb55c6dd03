"""The batch console in headless Chromium, against real `rates serve` and `rates worker`
processes on the sample data: upload, follow, error report, revert, and the token's handling."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import Stack

GOOD = "orig_code,dest_code,day,price\nCNSGH,NLRTM,2021-02-01,1500\nCNSGH,NLRTM,2021-02-01,1600\n"
BAD = (
    "orig_code,dest_code,day,price\n"
    "CNSGH,NLRTM,2021-02-01,1500\n"
    "QQQQQ,NLRTM,2021-02-01,1500\n"
    "CNSGH,NLRTM,2021-02-30,1600\n"
)
FINISHED_S = 30.0


def open_console(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.url}/console/batches")
    page.locator("#token").fill(stack.token)
    page.locator("#token").press("Enter")
    expect(page.locator("#token-state")).to_be_visible()


def batch_status(page: Page) -> str:
    return page.locator("#detail-title .badge").inner_text()


def shown_batch_id(page: Page) -> int:
    return int(page.locator("#detail-title").inner_text().split()[1])


def test_a_good_file_uploaded_by_the_picker_ends_succeeded(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    """A CSV chosen with the file picker uploads (progress to 100%) and the console follows
    the batch until the worker has applied it: succeeded, 2 rows inserted, timings shown."""
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    open_console(page, stack)
    page.locator("#file").set_input_files(good)
    expect(page.locator("#detail-title .badge")).to_have_text(
        "succeeded", timeout=FINISHED_S * 1000
    )
    expect(page.locator("#upload-bar")).to_have_attribute("value", "100")
    expect(page.locator("#batch-rows tbody td").nth(1)).to_have_text("2")
    expect(page.locator("#batch-timings")).to_contain_text("count")
    batch_id = shown_batch_id(page)
    assert (
        httpx.get(f"{stack.url}/batches/{batch_id}", headers=stack.auth).json()["status"]
        == "succeeded"
    )
    expect(page.locator(f'#batches tr[data-batch="{batch_id}"]')).to_contain_text("succeeded")
    expect(page).to_have_url(f"{stack.url}/console/batches?batch={batch_id}")


def test_a_bad_file_dropped_on_the_console_shows_its_error_table(page: Page, stack: Stack) -> None:
    """A CSV dropped on the drop zone is rejected by the worker; the console shows the error
    report as a table of line, field and reason."""
    open_console(page, stack)
    page.evaluate(
        """text => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], "bad.csv", { type: "text/csv" }));
            const zone = document.getElementById("dropzone");
            for (const type of ["dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true }));
            }
        }""",
        BAD,
    )
    expect(page.locator("#detail-title .badge")).to_have_text("rejected", timeout=FINISHED_S * 1000)
    rows = page.locator("#batch-report tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td")).to_have_text(["3", "orig_code", "unknown port QQQQQ"])
    expect(rows.nth(1).locator("td").nth(0)).to_have_text("4")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("day")
    page.locator("#status-filter").select_option("rejected")
    expect(page.locator("#batches tbody tr")).to_have_count(1)
    expect(page).to_have_url(f"{stack.url}/console/batches?status=rejected&batch=1")


def test_a_file_refused_at_upload_shows_its_report_at_once(page: Page, stack: Stack) -> None:
    """A file with the wrong header is refused before storing; its report shows under the
    upload, naming line 1 and the header."""
    open_console(page, stack)
    page.locator("#file").set_input_files(
        {"name": "wrong.csv", "mimeType": "text/csv", "buffer": b"a,b\n1,2\n"}
    )
    expect(page.locator("#upload-message")).to_contain_text("wrong.csv refused")
    cells = page.locator("#upload-report-table tbody tr").first.locator("td")
    expect(cells.nth(0)).to_have_text("1")
    expect(cells.nth(1)).to_have_text("header")


def test_revert_asks_first_then_moves_the_batch_to_reverted(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    """Revert opens a confirmation; Cancel changes nothing, Revert makes the batch reverted
    in the API and on the page."""
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    open_console(page, stack)
    page.locator("#file").set_input_files(good)
    expect(page.locator("#detail-title .badge")).to_have_text(
        "succeeded", timeout=FINISHED_S * 1000
    )
    batch_id = shown_batch_id(page)

    page.locator("#revert").click()
    dialog = page.locator("#revert-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Revert batch {batch_id}?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert (
        httpx.get(f"{stack.url}/batches/{batch_id}", headers=stack.auth).json()["status"]
        == "succeeded"
    )

    page.locator("#revert").click()
    dialog.get_by_role("button", name="Revert").click()
    expect(page.locator("#detail-title .badge")).to_have_text("reverted")
    expect(page.locator("#detail-message")).to_contain_text("2 rows removed")
    expect(page.locator("#revert")).to_be_hidden()
    assert (
        httpx.get(f"{stack.url}/batches/{batch_id}", headers=stack.auth).json()["status"]
        == "reverted"
    )


def test_the_token_goes_in_headers_only_and_stays_in_the_tab(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    """Every API call of the console carries the bearer token; no URL ever holds it; it is
    in sessionStorage (this tab) and not in localStorage; a wrong token asks again."""
    calls: list[Request] = []
    page.on("request", lambda request: calls.append(request))
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    open_console(page, stack)
    page.locator("#file").set_input_files(good)
    expect(page.locator("#detail-title .badge")).to_have_text(
        "succeeded", timeout=FINISHED_S * 1000
    )

    api_calls = [call for call in calls if "/batches" in call.url and "/console/" not in call.url]
    assert {call.method for call in api_calls} >= {"GET", "POST"}
    assert any(call.url.endswith("/batches?limit=50") for call in api_calls)
    assert any(call.url.endswith(f"/batches/{shown_batch_id(page)}") for call in api_calls)
    for call in api_calls:
        assert call.all_headers().get("authorization") == f"Bearer {stack.token}", call.url
    assert all(stack.token not in call.url for call in calls)
    assert stack.token not in page.url
    storage = page.evaluate(
        "() => [sessionStorage.getItem('rates.ingestToken'), localStorage.length]"
    )
    assert storage == [stack.token, 0]

    page.locator("#forget-token").click()
    page.locator("#token").fill("wrong-token")
    page.locator("#token").press("Enter")
    page.locator("#file").set_input_files(good)
    expect(page.locator("#token-message")).to_contain_text("Enter a valid token")
    expect(page.locator("#token-form")).to_be_visible()
