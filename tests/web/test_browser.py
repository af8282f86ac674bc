"""The dashboard pages in real Chromium against a real server with a known town.

Values on the pages are checked against the JSON API of the same server and, where they follow
directly from the stored observations (latest values, today's bicycle count, the gauge level),
against the fixture itself. Every page is scanned with axe-core in German and English.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from ortspuls.web.i18n import Translator

BERLIN = ZoneInfo("Europe/Berlin")
SLUGS = ["radverkehr", "parken", "pegel", "baumbewaesserung", "luftqualitaet", "wetter", "laerm",
         "besucherfrequenz"]
TIMEOUT = 15_000


def t(lang: str = "de") -> Translator:
    return Translator(lang, BERLIN)


def api(town, path: str, **params) -> dict:
    # httpx would replace a query string already in `path` by `params`, even an empty one.
    response = httpx.get(f"{town.url}{path}", params=params or None, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def open_page(page, url: str) -> None:
    """Load a page and wait until its script has run (SSE keeps the network busy for ever)."""
    page.goto(url, wait_until="load")
    page.wait_for_function("document.readyState === 'complete'")
    if page.locator("figure[data-chart] [data-plot]").count():
        page.wait_for_selector("figure[data-chart] .uplot", timeout=TIMEOUT)
    if page.locator("[data-map]").count():
        page.wait_for_selector(".leaflet-marker-icon", timeout=TIMEOUT)


def only_own_requests(page, town) -> None:
    foreign = [u for u in page.requests
               if not u.startswith(town.url) and not u.startswith(("data:", "blob:"))]
    assert not foreign, f"requests to third parties: {foreign}"


def today_bicycles(town) -> float:
    """Today's count (local day in Berlin) from the fixture's observations, independently."""
    today = datetime.now(BERLIN).date()
    return float(sum(v for when, v in town.observation_times(town.stream("Radverkehr Ringgleis"))
                     if when.astimezone(BERLIN).date() == today))


def buckets_from_fixture(town, stream, start: str, end: str, interval: str) -> dict[str, dict]:
    """Hourly or local-daily buckets computed from the fixture's raw observations."""
    t0, t1 = (datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (start, end))
    groups: dict[datetime, list[float]] = {}
    for when, value in town.observation_times(stream):
        if not t0 <= when < t1:
            continue
        if interval == "PT1H":
            key = when.replace(minute=0, second=0, microsecond=0)
        else:
            local = when.astimezone(BERLIN)
            key = datetime(local.year, local.month, local.day, tzinfo=BERLIN).astimezone(UTC)
        groups.setdefault(key, []).append(float(value))
    return {k.strftime("%Y-%m-%dT%H:%M:%SZ"): {
        "count": len(v), "sum": sum(v), "min": min(v), "max": max(v), "mean": sum(v) / len(v)}
        for k, v in sorted(groups.items())}


# ---------------------------------------------------------------------------------------------
# Overview


def test_overview_shows_every_usecase_with_its_values(page, town, artifacts):
    tiles = api(town, "/api/v1/usecases", lang="de")["usecases"]
    assert [tile["slug"] for tile in tiles] == SLUGS
    open_page(page, f"{town.url}/")
    assert page.locator("html").get_attribute("lang") == "de"
    items = page.locator("li[data-usecase]")
    assert items.count() == len(SLUGS)
    for tile in tiles:
        item = page.locator(f'li[data-usecase="{tile["slug"]}"]')
        expect(item.locator("h2")).to_have_text(tile["title"])
        link = item.locator("h2 a")
        assert link.get_attribute("href") == f"/usecase/{tile['slug']}"
        value = tile["headline"].get("value")
        expect(item.locator(".tile__figure .value")).to_have_text(t().value(value))
        if value is not None and tile["headline"].get("unit"):
            expect(item.locator(".tile__figure .unit")).to_have_text(tile["headline"]["unit"])
        # Status in words and as a shape, not by colour alone.
        status = item.locator(".tile__status .status")
        expect(status.locator(".status__text")).to_have_text(tile["status"]["text"])
        assert status.get_attribute("data-status") == tile["status"]["level"]
        assert status.locator("use").get_attribute("href") == f"#shape-{tile['status']['level']}"
        expect(item.locator(".badge--stale")).to_have_count(1 if tile["stale"] else 0)
        if sum(v is not None for v in tile["trend"]) >= 2:
            assert item.locator("svg.sparkline").get_attribute("aria-label")

    by_slug = {tile["slug"]: tile for tile in tiles}
    # Values that follow from the stored observations alone:
    pegel = page.locator('li[data-usecase="pegel"]')
    expect(pegel.locator(".tile__figure .value")).to_have_text(
        t().value(town.stream("Wasserstand Mühlbach").latest))
    expect(pegel.locator("time[data-relative]")).to_have_text(
        re.compile(r"^(gerade eben|vor \d+ Min\.)$"))
    bikes = page.locator('li[data-usecase="radverkehr"]')
    expect(bikes.locator(".tile__figure .value")).to_have_text(t().value(today_bicycles(town)))
    wetter = page.locator('li[data-usecase="wetter"]')
    expect(wetter.locator(".tile__figure .value")).to_have_text(
        t().value(town.stream("Lufttemperatur Rathaus").latest))
    # The noise meter's newest value is three days old: marked stale, the others are not.
    assert by_slug["laerm"]["stale"] and not by_slug["pegel"]["stale"]
    expect(page.locator('li[data-usecase="laerm"] .badge--stale')).to_have_text(
        re.compile("veraltet"))
    expect(page.locator('li[data-usecase="laerm"] time[data-relative]')).to_have_text(
        re.compile(r"^vor 3 Tagen$"))
    page.screenshot(path=str(artifacts / "overview-de.png"), full_page=True)
    only_own_requests(page, town)


def test_overview_in_english_and_the_language_is_remembered(page, town, artifacts):
    tiles = api(town, "/api/v1/usecases", lang="en")["usecases"]
    open_page(page, f"{town.url}/?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.locator("h1")).to_have_text(t("en")("overview.heading"))
    for tile in tiles:
        item = page.locator(f'li[data-usecase="{tile["slug"]}"]')
        expect(item.locator("h2")).to_have_text(tile["title"])
        expect(item.locator(".tile__figure .value")).to_have_text(
            t("en").value(tile["headline"].get("value")))
    page.screenshot(path=str(artifacts / "overview-en.png"), full_page=True)
    # The cookie keeps English on the next page, without ?lang.
    page.locator("nav.site-nav a", has_text="Map").click()
    page.wait_for_url(f"{town.url}/map")
    assert page.locator("html").get_attribute("lang") == "en"
    # The switch leads back to German.
    page.locator("a.lang-switch").click()
    page.wait_for_url(re.compile(r"lang=de"))
    assert page.locator("html").get_attribute("lang") == "de"


def test_new_observation_appears_on_the_open_overview_without_reload(page, town):
    open_page(page, f"{town.url}/")
    expect(page.locator("[data-live-state]")).to_have_attribute("data-state", "on",
                                                                timeout=TIMEOUT)
    page.evaluate("window.__notReloaded = true")
    stream = town.stream("Wasserstand Mühlbach")
    new_value = stream.latest + 37.5
    town.post_observation(stream, new_value)
    value = page.locator('li[data-usecase="pegel"] .tile__figure .value')
    expect(value).to_have_text(t().value(new_value), timeout=TIMEOUT)
    expect(page.locator('li[data-usecase="pegel"] time[data-relative]')).to_have_text(
        re.compile(r"gerade eben|vor 1 Min\."))
    assert page.evaluate("window.__notReloaded") is True


# ---------------------------------------------------------------------------------------------
# Detail pages

READ_CHART = """(id) => {
  const plot = window.ortspulsCharts[id];
  return plot.data.map((series) => Array.from(series));
}"""

READ_TABLE = """(figure) => Array.from(figure.querySelectorAll("tr[data-start]")).map((row) => ({
  start: row.dataset.start,
  end: row.dataset.end,
  time: row.querySelector("th").textContent.trim(),
  cells: Object.fromEntries(Array.from(row.querySelectorAll("td[data-stat]")).map((td) =>
    [td.dataset.stat, {raw: td.dataset.value, text: td.textContent.trim()}])),
}))"""


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def check_chart_against_api(page, town, ds_id: int, range_key: str, lang: str = "de") -> dict:
    figure = page.locator(f'figure[data-chart="{ds_id}"]')
    link = figure.locator(f'[data-range="{range_key}"]')
    expect(link).to_have_attribute("aria-current", "true")
    series = api(town, link.get_attribute("data-series"))
    rows = series["value"]
    assert rows, f"no buckets for {range_key}"
    kind = figure.get_attribute("data-kind")
    plotted = page.evaluate(READ_CHART, str(ds_id))
    assert plotted[0] == [epoch(r["start"]) for r in rows]
    stats = ["sum"] if kind == "sum" else ["mean", "min", "max"]
    for i, stat in enumerate(stats, start=1):
        assert plotted[i] == [r[stat] for r in rows], stat
    table = figure.locator("[data-series-table]").evaluate(READ_TABLE)
    assert [r["start"] for r in table] == [r["start"] for r in rows]
    daily = series["interval"] in ("P1D", "P1M")
    for shown, row in zip(table, rows, strict=True):
        assert shown["time"] == (t(lang).date(row["start"]) if daily
                                 else t(lang).datetime(row["start"]))
        for stat, cell in shown["cells"].items():
            assert float(cell["raw"]) == row[stat], (stat, row)
            assert cell["text"] == t(lang).number(row[stat])  # browser and server alike
    # …and the buckets are what the raw observations of the fixture give.
    stream = next(x for st in town.stations for x in st.streams if x.id == ds_id)
    expected = buckets_from_fixture(town, stream, link.get_attribute("data-from"),
                                    link.get_attribute("data-to"), series["interval"])
    assert [r["start"] for r in rows] == list(expected)
    for row in rows:
        for stat in ("count", "sum", "min", "max", "mean"):
            assert row[stat] == pytest.approx(expected[row["start"]][stat]), (stat, row)
    # The download of the shown range has the same buckets.
    csv_href = figure.locator("[data-csv-link]").get_attribute("href")
    assert csv_href == link.get_attribute("data-csv")
    lines = httpx.get(f"{town.url}{csv_href}", timeout=30).text.strip().splitlines()
    assert len(lines) == len(rows) + 1
    return series


def test_detail_chart_and_table_agree_with_the_series_api(page, town, artifacts):
    ds_id = town.stream("Lufttemperatur Rathaus").id
    open_page(page, f"{town.url}/usecase/wetter")
    figure = page.locator(f'figure[data-chart="{ds_id}"]')
    check_chart_against_api(page, town, ds_id, "24h")
    assert figure.locator("[data-plot]").get_attribute("aria-label").startswith("Diagramm")
    page.screenshot(path=str(artifacts / "detail-wetter-de.png"), full_page=True)
    # Keyboard only: focus the 7-day link and press Enter; the page is not reloaded.
    page.evaluate("window.__notReloaded = true")
    figure.locator('[data-range="7d"]').focus()
    page.keyboard.press("Enter")
    expect(figure.locator('[data-range="7d"]')).to_have_attribute("aria-current", "true")
    series = check_chart_against_api(page, town, ds_id, "7d")
    assert len(series["value"]) >= 24 * 7 - 1  # nine days of data fill the week
    expect(figure.locator("[data-caption]")).to_contain_text("die letzten 7 Tage")
    figure.locator('[data-range="1y"]').focus()
    page.keyboard.press("Enter")
    expect(figure.locator('[data-range="1y"]')).to_have_attribute("aria-current", "true")
    series = check_chart_against_api(page, town, ds_id, "1y")
    assert series["interval"] == "P1D"
    assert page.evaluate("window.__notReloaded") is True
    assert f"range_{ds_id}=1y" in page.url  # the address keeps the choice


def test_detail_chart_in_english_formats_like_the_server(page, town):
    ds_id = town.stream("Lufttemperatur Rathaus").id
    open_page(page, f"{town.url}/usecase/wetter?lang=en")
    check_chart_against_api(page, town, ds_id, "24h", "en")  # rendered by the server
    figure = page.locator(f'figure[data-chart="{ds_id}"]')
    figure.locator('[data-range="7d"]').click()
    check_chart_against_api(page, town, ds_id, "7d", "en")  # rendered by the browser
    expect(figure.locator("[data-caption]")).to_contain_text("the last 7 days")


def test_detail_chart_of_counts_shows_sums_per_hour(page, town):
    ds_id = town.stream("Radverkehr Ringgleis").id
    open_page(page, f"{town.url}/usecase/radverkehr")
    figure = page.locator(f'figure[data-chart="{ds_id}"]')
    assert figure.get_attribute("data-kind") == "sum"
    expect(figure.locator("th[data-stat]")).to_have_text(["Summe", "Anzahl Messwerte"])
    series = check_chart_against_api(page, town, ds_id, "24h")
    assert series["interval"] == "PT1H"


def test_detail_page_lists_every_station_value_and_its_sta_link(page, town):
    open_page(page, f"{town.url}/usecase/wetter")
    station = town.station("wetter")
    expect(page.locator(f'tr[data-thing="{station.id}"] td').first).to_have_text(station.name)
    for stream in station.streams:
        row = page.locator(f'tr[data-datastream="{stream.id}"]')
        expect(row.locator("th")).to_have_text(stream.name)
        expect(row.locator("[data-latest-value] .value")).to_have_text(t().value(stream.latest))
        href = row.locator("a").get_attribute("href")
        assert href.endswith(f"/v1.1/Datastreams({stream.id})")
        sta = httpx.get(href if href.startswith("http") else f"{town.url}{href}").json()
        assert sta["name"] == stream.name
    # A live observation updates the station's value in place.
    humidity = town.stream("Luftfeuchte Rathaus")
    page.wait_for_function("window.ortspulsLive && window.ortspulsLive.readyState === 1")
    town.post_observation(humidity, 81.25)
    expect(page.locator(f'tr[data-datastream="{humidity.id}"] [data-latest-value] .value')
           ).to_have_text("81,25", timeout=TIMEOUT)


# ---------------------------------------------------------------------------------------------
# Map


def test_map_shows_a_marker_per_station_with_popup_and_mini_chart(page, town, artifacts):
    tiles = api(town, "/api/v1/usecases", lang="de")["usecases"]
    levels: dict[int, str] = {}
    rank = {"unknown": 0, "ok": 1, "warn": 2, "alert": 3}
    for tile in tiles:
        for st in tile["stations"]:
            level = st["status"]["level"]
            if rank[level] >= rank[levels.get(st["thing_id"], "unknown")]:
                levels[st["thing_id"]] = level
    open_page(page, f"{town.url}/map")
    markers = page.locator(".leaflet-marker-icon")
    expect(markers).to_have_count(len(town.stations))
    for station in town.stations:
        marker = page.locator(f'.leaflet-marker-icon[data-thing="{station.id}"]')
        assert station.name in marker.get_attribute("aria-label")
        assert marker.get_attribute("data-level") == levels[station.id]
        assert marker.get_attribute("tabindex") == "0"
        assert f"map-marker--{levels[station.id]}" in marker.get_attribute("class")
    # The town outline is drawn (from the configured file, served by the server itself).
    expect(page.locator(".leaflet-overlay-pane path")).not_to_have_count(0)
    # Keyboard: focus a marker, Enter opens its popup with the latest values and a mini chart.
    weather = town.station("wetter")
    marker = page.locator(f'.leaflet-marker-icon[data-thing="{weather.id}"]')
    marker.focus()
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup")
    expect(popup.locator("h2")).to_have_text(weather.name)
    temperature = town.stream("Lufttemperatur Rathaus")
    expect(popup.locator(f'li[data-datastream="{temperature.id}"] strong')).to_contain_text(
        t().value(temperature.latest))
    expect(popup.locator("[data-mini-chart] svg.sparkline")).to_be_visible(timeout=TIMEOUT)
    assert popup.locator("[data-mini-chart] svg").get_attribute("role") == "img"
    page.screenshot(path=str(artifacts / "map-de.png"), full_page=True)
    # Escape closes it; the list below the map names every station with its values.
    page.keyboard.press("Escape")
    expect(popup).to_have_count(0)
    rows = page.locator("table.station-list tbody tr")
    expect(rows).to_have_count(len(town.stations))
    # "Show on map" in the list opens the marker's popup.
    pegel = town.station("pegel")
    page.locator(f'[data-show-on-map="{pegel.id}"]').click()
    expect(page.locator(".leaflet-popup h2")).to_have_text(pegel.name)
    only_own_requests(page, town)


# ---------------------------------------------------------------------------------------------
# Keyboard, accessibility, weight

PAGES = ["/", "/map", "/barrierefreiheit", "/leichte-sprache", *(f"/usecase/{s}" for s in SLUGS)]

MARK_FOCUSABLE = """() => {
  // checkVisibility() also knows the content of a closed <details> is not shown.
  const visible = (el) => el.checkVisibility({ visibilityProperty: true });
  const items = Array.from(document.querySelectorAll(
    "a[href], button:not([disabled]), summary, [tabindex='0']")).filter(visible);
  items.forEach((el, i) => el.setAttribute("data-kbd", String(i)));
  return items.map((el) => el.tagName + " "
    + (el.textContent || el.getAttribute("aria-label") || "").trim().slice(0, 40));
}"""
ACTIVE_MARK = "document.activeElement && document.activeElement.getAttribute('data-kbd')"


@pytest.mark.parametrize("path", ["/", "/usecase/radverkehr", "/map", "/barrierefreiheit",
                                  "/leichte-sprache"])
def test_keyboard_alone_reaches_every_link_and_control(page, town, path):
    open_page(page, f"{town.url}{path}")
    names = page.evaluate(MARK_FOCUSABLE)
    assert len(names) > 5
    reached: list[str] = []
    for _ in range(len(names) * 3 + 20):
        page.keyboard.press("Tab")
        mark = page.evaluate(ACTIVE_MARK)
        if mark is not None and (not reached or reached[-1] != mark):
            reached.append(mark)
        if len(set(reached)) == len(names):
            break
    missing = [names[i] for i in range(len(names)) if str(i) not in reached]
    assert not missing, f"not reachable by Tab on {path}: {missing}"
    # Focus order follows the document: the skip link first, then the page in reading order.
    assert reached[0] == "0" and "Zum Inhalt" in names[0]
    order = [int(m) for m in dict.fromkeys(reached)]
    if path != "/map":  # Leaflet's markers sit in the map, between the legend and the list
        assert order == sorted(order), f"focus order differs from reading order on {path}"


def test_skip_link_moves_focus_to_the_main_content(page, town):
    open_page(page, f"{town.url}/")
    page.keyboard.press("Tab")
    expect(page.locator("a.skip-link")).to_be_focused()
    expect(page.locator("a.skip-link")).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


@pytest.mark.parametrize("lang", ["de", "en"])
def test_axe_finds_no_violations_on_any_page(browser, town, lang):
    axe = Axe()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    failures = []
    try:
        for path in [*PAGES, "/usecase/gibt-es-nicht"]:
            open_page(page, f"{town.url}{path}?lang={lang}")
            assert page.locator("html").get_attribute("lang") == lang
            # Open every table and popup so that axe checks them too.
            page.evaluate("document.querySelectorAll('details').forEach((d) => d.open = true)")
            if path == "/map":
                page.locator(".leaflet-marker-icon").first.focus()
                page.keyboard.press("Enter")
                page.wait_for_selector(".leaflet-popup [data-mini-chart] > *", timeout=TIMEOUT)
                # Contrast is judged on the popup as shown, after its fade-in.
                page.wait_for_function(
                    "getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
            result = axe.run(page)
            for violation in result.response["violations"]:
                failures.append(f"{lang} {path}: {violation['id']} ({violation['impact']}) "
                                f"{[n['target'] for n in violation['nodes']][:5]}")
    finally:
        context.close()
    assert not failures, "\n".join(failures)


def test_pages_work_without_javascript(browser, town):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{town.url}/")
        expect(page.locator("li[data-usecase]")).to_have_count(len(SLUGS))
        expect(page.locator('li[data-usecase="pegel"] .tile__figure .value')).not_to_have_text("–")
        ds_id = town.stream("Lufttemperatur Rathaus").id
        page.goto(f"{town.url}/usecase/wetter?range_{ds_id}=7d")
        figure = page.locator(f'figure[data-chart="{ds_id}"]')
        expect(figure.locator('[data-range="7d"]')).to_have_attribute("aria-current", "true")
        assert figure.locator("tr[data-start]").count() >= 24 * 7 - 1
        # The range links are plain links: following one renders that range on the server.
        figure.locator('[data-range="1y"]').click()
        expect(page.locator(f'figure[data-chart="{ds_id}"] [data-range="1y"]')
               ).to_have_attribute("aria-current", "true")
        page.goto(f"{town.url}/map")
        expect(page.locator("table.station-list tbody tr")).to_have_count(len(town.stations))
    finally:
        context.close()


def test_overview_transfers_at_most_500_kb(page, town):
    open_page(page, f"{town.url}/")
    total = page.evaluate("""() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const resources = performance.getEntriesByType("resource")
        .filter((r) => !r.name.includes("/api/v1/live"));
      return [nav, ...resources].reduce((sum, e) => sum + (e.transferSize || e.encodedBodySize), 0);
    }""")
    assert 0 < total <= 500 * 1024


def test_pages_name_no_third_party(page, town):
    for path in PAGES:
        open_page(page, f"{town.url}{path}")
    only_own_requests(page, town)
