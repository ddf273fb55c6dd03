"""The lane explorer at / in headless Chromium, against `rates serve` on the sample data."""

from __future__ import annotations

import math
from urllib.parse import urlencode

import httpx2 as httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Stack

# Past the sample's last day (2021-01-31): the answer has days with and without prices.
LANE = {
    "origin": "CNSGH",
    "destination": "north_europe_main",
    "date_from": "2021-01-25",
    "date_to": "2021-02-05",
}


def api_rates(stack: Stack, lane: dict[str, str]) -> list[dict]:
    rates: list[dict] = httpx.get(f"{stack.url}/rates", params=lane).json()["rates"]
    return rates


def whole_dollars(price: float) -> str:
    """As the page shows an average: rounded half up, with thousands separators."""
    return f"${math.floor(price + 0.5):,}"


def table_rows(page: Page) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        "#days tbody tr",
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent.trim()))",
    )
    return rows


def test_a_lane_opened_by_url_shows_every_day_with_count_and_rounded_average(
    page: Page, stack: Stack
) -> None:
    """Each day of the API's answer is a row: day, average in whole dollars (or "too few"),
    count; days under 3 prices are marked, and the CSV link asks for the same lane."""
    expected = api_rates(stack, LANE)
    page.goto(f"{stack.url}/?{urlencode(LANE)}")
    expect(page.locator("#days tbody tr")).to_have_count(len(expected))
    assert table_rows(page) == [
        [
            rate["day"],
            "too few" if rate["price"] is None else whole_dollars(rate["price"]),
            str(rate["count"]),
        ]
        for rate in reversed(expected)  # oldest first, like the chart
    ]
    too_few = [rate for rate in expected if rate["count"] < 3]
    assert 0 < len(too_few) < len(expected)
    expect(page.locator("#days tbody tr.too-few")).to_have_count(len(too_few))
    for field, value in LANE.items():
        expect(page.locator(f"#{field}")).to_have_value(value)
    csv = page.locator("#csv-link").get_attribute("href")
    assert csv == f"/rates?{urlencode(LANE)}&format=csv"
    download = httpx.get(f"{stack.url}{csv}")
    assert download.headers["content-type"].startswith("text/csv")


def test_the_chart_is_drawn_with_the_line_and_bars(page: Page, stack: Stack) -> None:
    """The chart's canvas holds the line's blue, the count bars' grey and, behind days with
    too few prices, a translucent orange band; its legend names the series."""
    page.goto(f"{stack.url}/?{urlencode(LANE)}")
    canvas = page.locator("#chart canvas")
    expect(canvas).to_have_count(1)
    expect(page.locator("#chart .u-legend")).to_contain_text("Too few (< 3)")
    expect(page.locator("#chart .u-legend")).to_contain_text("Average (USD)")
    colours = canvas.evaluate(
        """canvas => {
            const context = canvas.getContext("2d");
            const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
            const seen = { blue: 0, band: 0, grey: 0 };
            for (let i = 0; i < data.length; i += 4) {
                const [r, g, b, a] = data.slice(i, i + 4);
                if (a > 20 && a < 60 && r > 180 && g > 80 && g < 160 && b < 40) seen.band++;
                if (a < 200) continue;
                if (b > 150 && r < 80) seen.blue++;
                else if (Math.abs(r - b) < 40 && r < 200 && r > 100) seen.grey++;
            }
            return { ...seen, width: canvas.width, height: canvas.height };
        }"""
    )
    assert colours["width"] > 500 and colours["height"] > 200
    assert colours["blue"] > 100, colours  # the average line
    assert colours["band"] > 10_000, colours  # behind days with too few prices
    assert colours["grey"] > 100, colours  # bars of the other days


def test_autocomplete_finds_china_main_from_china_by_keyboard(page: Page, stack: Stack) -> None:
    """Typing "china" lists china_main as a top-level region; arrow down and Enter pick it."""
    page.goto(f"{stack.url}/?{urlencode(LANE)}")
    origin = page.locator("#origin")
    origin.fill("")
    origin.press_sequentially("china")
    option = page.locator('#origin-options [role="option"][data-code="china_main"]')
    expect(option).to_be_visible()
    expect(option).to_contain_text("China Main")
    expect(option).to_contain_text("region, depth 0, top level")
    expect(page.locator("#origin-options [role=option]").first).to_have_attribute(
        "data-code", "china_main"
    )
    origin.press("ArrowDown")
    expect(origin).to_have_attribute("aria-activedescendant", "origin-options-0")
    origin.press("Enter")
    expect(origin).to_have_value("china_main")
    expect(page.locator("#origin-options")).to_be_hidden()
    origin.press("Enter")  # the list is closed: Enter submits the form
    expect(page).to_have_url(f"{stack.url}/?{urlencode({**LANE, 'origin': 'china_main'})}")
    expect(page.locator("#result-title")).to_have_text("china_main → north_europe_main")


def test_a_bad_date_shows_the_api_message_next_to_its_field(page: Page, stack: Stack) -> None:
    """An impossible date, from the URL or typed, shows the API's own message beside it."""
    bad = {**LANE, "date_from": "2021-02-30"}
    message = httpx.get(f"{stack.url}/rates", params=bad).json()["error"]["message"]
    page.goto(f"{stack.url}/?{urlencode(bad)}")
    expect(page.locator("#date_from-error")).to_have_text(message)
    expect(page.locator("#date_from")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#result")).to_be_hidden()

    typed = {**LANE, "date_to": "2021-13-01"}
    message = httpx.get(f"{stack.url}/rates", params=typed).json()["error"]["message"]
    page.locator("#date_from").fill(LANE["date_from"])
    page.locator("#date_to").fill(typed["date_to"])
    page.locator("#date_to").press("Enter")
    expect(page.locator("#date_to-error")).to_have_text(message)
    expect(page.locator("#date_from-error")).to_be_empty()
    expect(page).to_have_url(f"{stack.url}/?{urlencode(typed)}")


def test_an_unknown_location_is_named_next_to_its_field(page: Page, stack: Stack) -> None:
    """A destination that is neither port nor region gets the API's 404 message beside it."""
    page.goto(f"{stack.url}/?{urlencode({**LANE, 'destination': 'atlantis'})}")
    expect(page.locator("#destination-error")).to_contain_text("'atlantis'")


def test_the_bare_page_opens_an_example_lane(page: Page, stack: Stack) -> None:
    """/ without a lane loads the example lane and writes it into the URL to share."""
    page.goto(f"{stack.url}/")
    expect(page.locator("#days tbody tr")).to_have_count(31)
    example = httpx.get(f"{stack.url}/lanes/example").json()
    expect(page).to_have_url(f"{stack.url}/?{urlencode(example)}")


def test_the_page_fits_a_phone_width_screen(phone_page: Page, stack: Stack) -> None:
    """At 375 px wide nothing scrolls sideways and the chart fits the screen."""
    phone_page.goto(f"{stack.url}/?{urlencode(LANE)}")
    expect(phone_page.locator("#days tbody tr").first).to_be_visible()
    widths = phone_page.evaluate(
        "() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth,"
        " chart: document.querySelector('#chart canvas').getBoundingClientRect().right })"
    )
    assert widths["page"] <= widths["screen"] == 375, widths
    assert widths["chart"] <= 375, widths
