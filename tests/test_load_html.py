"""`qactuar load --html FILE` opened in a headless Chromium: its charts are drawn and the page
asks for nothing but itself (no request leaves the machine)."""

from __future__ import annotations

from pathlib import Path

from load_helpers import report_counts, run_load
from test_admin_dashboard import Page, browser, pytestmark  # noqa: F401  (the fixture, the skip)

from conftest import ServerProcess, wait_until


def extent(page: Page, selector: str) -> list[dict[str, float]]:
    """The drawn boxes (width, height) of the elements `selector` picks."""
    return page.evaluate(
        f"Array.from(document.querySelectorAll({selector!r})).map((e) => "
        "{ const b = e.getBBox(); return {width: b.width, height: b.height}; })")


def test_the_html_report_draws_its_charts_offline(
        basic_server: ServerProcess, browser: Page, tmp_path: Path) -> None:  # noqa: F811
    page_file = tmp_path / "report.html"
    result = run_load("-D", "2.5", "-c", "2", "--h1", "--html", str(page_file),
                      f"{basic_server.url}/hello")
    assert result.returncode == 0, result.stdout + result.stderr
    succeeded = report_counts(result.stdout)["succeeded"]
    text = page_file.read_text()
    assert "<script" not in text and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', "").replace(basic_server.url, "")

    browser.call("Network.enable")
    browser.call("Page.enable")
    browser.call("Page.navigate", url=page_file.as_uri())
    wait_until(lambda: browser.evaluate("document.readyState") == "complete", 20,
               "the page to load")

    # Requests per second: one point per measured second, a line with a width and height
    # (the first second climbs from the connections' start).
    points = browser.evaluate("document.querySelectorAll('#requests-chart .point-requests')"
                              ".length")
    assert points >= 2
    (line,) = extent(browser, "#requests-chart .line-requests")
    assert line["width"] > 100 and line["height"] >= 0
    assert browser.evaluate("Math.max(...Array.from(document.querySelectorAll("
                            "'#requests-chart .point-requests')).map((c) => "
                            "c.getBBox().y)) < 250")
    # Latency percentiles: the three lines are drawn across the chart.
    for name in ("p50", "p90", "p99"):
        (drawn,) = extent(browser, f"#latency-chart .line-{name}")
        assert drawn["width"] > 100, name
    # The histogram: bars with a height, and their counts (in their titles) add up.
    bars = extent(browser, "#histogram-chart rect.bar")
    assert bars and all(bar["height"] > 0 and bar["width"] > 0 for bar in bars)
    counted = browser.evaluate(
        "Array.from(document.querySelectorAll('#histogram-chart rect.bar title'))"
        ".map((t) => parseInt(t.textContent.split(': ')[1])).reduce((a, b) => a + b, 0)")
    assert counted == succeeded
    assert f"/ {succeeded} /" in browser.text("#summary")
    # The page is painted: a screenshot is not one flat colour.
    shot = browser.call("Page.captureScreenshot", format="png")["data"]
    assert len(shot) > 10_000

    requested = [event["params"]["request"]["url"] for event in browser.events
                 if event.get("method") == "Network.requestWillBeSent"]
    assert requested == [page_file.as_uri()], requested
