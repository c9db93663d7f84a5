"""The HTML result page renders with no network, in a real browser.

A small real run (``simulated`` and embedded MNIST, three solvers, a few
evaluations) gives a result file; its page is written as benchopt writes
it (scripts from CDNs) and made offline by
``benchmark_utils.analysis.offline_page``. Headless Chromium opens it with
every host name unresolvable and a dead proxy, and for the view the page
opens on and for the first saved view (``config.yml``) of each custom plot
kind, clicked in the page's tabs, on MNIST (picked in the page's data set
menu), checks: no error or warning in the browser console (a script that
failed to load or run, a view option the page does not know), the view's
title and axis labels (or table columns) drawn as the plot data gives them,
at least one trace drawn with data points (a curve's line or markers, a
bar), and for the tables one row per solver. The same checks on the page
as benchopt writes it must fail (blank offline).

Needs Chromium, ChromeDriver (Debian: ``chromium``, ``chromium-driver``,
which ``make test`` installs as root) and selenium (requirements-test.txt);
skipped with the reason without them.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from benchmark_utils.analysis.offline_page import (
    external_resources,
    render_page,
    rewrite_page,
)

ROOT = Path(__file__).resolve().parents[1]
SOLVERS = ["Inner-Only", "SOBA", "Implicit-GD"]
DATASETS = ["simulated", "mnist[source=embedded,n_train=500,n_val=200]"]
CUSTOM_KINDS = ["oracle_curve", "time_to_target", "target_time_table",
                "run_status"]
# What each custom kind's axis labels are about, whatever their wording.
LABEL_WORDS = {
    "oracle_curve": ("work", "value"),
    "time_to_target": (None, "time"),
}
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser_paths():
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (requirements-test.txt)")
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no Chromium and ChromeDriver: `make test` installs "
                    "Debian's chromium and chromium-driver (as root)")
    return browser, driver


def _views():
    views = yaml.safe_load((ROOT / "config.yml").read_text())["plot_configs"]
    first = {}
    for name, view in views.items():
        first.setdefault(view["plot_kind"], name)
    missing = [kind for kind in CUSTOM_KINDS if kind not in first]
    assert not missing, f"config.yml has no saved view of {missing}"
    return {kind: first[kind] for kind in CUSTOM_KINDS}


@pytest.fixture(scope="module")
def browser_paths():
    return _browser_paths()


@pytest.fixture(scope="module")
def pages(browser_paths, tmp_path_factory):
    """(offline page, page as benchopt writes it) of a small real run."""
    folder = tmp_path_factory.mktemp("html_page")
    result = folder / "run.parquet"
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT),
           "-n", "4", "-r", "1", "--timeout", "5", "--no-cache",
           "--no-plot", "--output", str(result)]
    for dataset in DATASETS:
        cmd += ["-d", dataset]
    for solver in SOLVERS:
        cmd += ["-s", solver]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = render_page(result, kinds=["objective_curve", *CUSTOM_KINDS])
    cdn_page = folder / "cdn.html"
    shutil.copy(page, cdn_page)
    rewrite_page(page)
    return page, cdn_page


@pytest.fixture(scope="module")
def driver(browser_paths):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = browser_paths
    options = Options()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1600,1000",
        # no network: no host name resolves, and a proxy that is not there
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
        "--proxy-server=http://127.0.0.1:9",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _console_problems(driver):
    return [f"console {entry['level']}: {entry['message'][:300]}"
            for entry in driver.get_log("browser")
            if entry["level"] in ("SEVERE", "WARNING")]


def _open(driver, page):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.as_uri())
    # the page sets its state, then draws, on the window's load event
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return window._state !== undefined"))


def _flat(text):
    return "".join((text or "").replace("<br />", "").split())


# What the page draws, read in the browser. getPlotData() is the data the
# page holds for the current view (result.js); the rest is the drawing.
_PLOT_STATE = """
const out = {};
try {
  const data = getPlotData();
  const div = getPlotDiv();
  out.kind = state().plot_kind;
  out.title = data.title; out.xlabel = data.xlabel; out.ylabel = data.ylabel;
  out.drawn_title = [...div.querySelectorAll('.gtitle')]
    .map(e => e.textContent).join('');
  out.drawn_x = [...div.querySelectorAll('.g-xtitle text')]
    .map(e => e.textContent).join('');
  out.drawn_y = [...div.querySelectorAll('.g-ytitle text')]
    .map(e => e.textContent).join('');
  out.xticks = [...div.querySelectorAll('.xtick text')]
    .map(e => e.textContent);
  out.traces_with_points = (div._fullData || []).filter(t =>
    t.visible === true
    && Array.from(t.y || []).some(v => v !== null && isFinite(v))).length;
  out.drawn_marks = [...div.querySelectorAll(
    '.scatterlayer .trace path.js-line, .scatterlayer .trace .point,'
    + ' .barlayer .point path')]
    .filter(e => (e.getAttribute('d') || '').length > 2).length;
} catch (error) { out.error = String(error); }
return out;
"""

_TABLE_STATE = """
const out = {};
try {
  const data = getPlotData();
  const box = document.getElementById('table_container');
  out.kind = state().plot_kind;
  out.shown = box.offsetParent !== null;
  out.title = data.title; out.columns = data.columns;
  out.drawn_title = [...box.querySelectorAll('h2')]
    .map(e => e.innerText).join('');
  out.drawn_columns = [...box.querySelectorAll('.gridjs-th-content')]
    .map(e => e.textContent.trim());
  out.first_cells = [...box.querySelectorAll('.gridjs-table tbody tr')]
    .map(row => row.querySelector('td')?.textContent.trim() || '');
} catch (error) { out.error = String(error); }
return out;
"""


def plot_problems(driver, kind, dataset=None, label_words=(None, None),
                  solvers=SOLVERS):
    """What is wrong with the plot on screen (empty list: nothing)."""
    got = driver.execute_script(_PLOT_STATE)
    if "error" in got:
        return [f"the page's state cannot be read: {got['error']}"]
    problems = []
    if got["kind"] != kind:
        problems.append(f"the page shows {got['kind']}, not {kind}")
    if got["traces_with_points"] < 1 or got["drawn_marks"] < 1:
        problems.append(f"no trace with data points ({got})")
    if not got["title"] or _flat(got["drawn_title"]) != _flat(got["title"]):
        problems.append(f"title {got['drawn_title']!r} drawn, "
                        f"{got['title']!r} expected")
    if dataset and dataset not in got["drawn_title"]:
        problems.append(f"title {got['drawn_title']!r} names no {dataset}")
    for axis, word in zip("xy", label_words):
        label, drawn = got[f"{axis}label"], got[f"drawn_{axis}"]
        if label and _flat(drawn) != _flat(label):
            problems.append(f"{axis} label {drawn!r} drawn, {label!r} "
                            "expected")
        if word and word not in drawn.lower():
            problems.append(f"{axis} label {drawn!r} does not say {word}")
    if not got["ylabel"] or not got["drawn_y"]:
        problems.append("no y label")
    if got["kind"] == "time_to_target":
        # a bar per solver, named on the x axis
        for solver in solvers:
            if not any(tick.startswith(solver) for tick in got["xticks"]):
                problems.append(f"no bar named {solver}: {got['xticks']}")
    elif not got["xlabel"] or not got["drawn_x"]:
        problems.append("no x label")
    return problems + _console_problems(driver)


def table_problems(driver, kind, dataset, solvers=SOLVERS):
    """What is wrong with the table on screen (empty list: nothing)."""
    got = {}
    for _ in range(40):  # Grid.js draws its rows asynchronously
        got = driver.execute_script(_TABLE_STATE)
        if got.get("first_cells"):
            break
        time.sleep(0.25)
    if "error" in got:
        return [f"the page's state cannot be read: {got['error']}"]
    problems = []
    if got["kind"] != kind or not got["shown"]:
        problems.append(f"the page shows {got['kind']}, not the {kind} "
                        "table")
    if not got["title"] or _flat(got["drawn_title"]) != _flat(got["title"]):
        problems.append(f"title {got['drawn_title']!r} drawn, "
                        f"{got['title']!r} expected")
    if dataset not in got["drawn_title"]:
        problems.append(f"title {got['drawn_title']!r} names no {dataset}")
    if not got["columns"] or got["drawn_columns"] != got["columns"]:
        problems.append(f"columns {got['drawn_columns']} drawn, "
                        f"{got['columns']} expected")
    for solver in solvers:
        if not any(cell.startswith(solver) for cell in got["first_cells"]):
            problems.append(f"no row for {solver}: {got['first_cells']}")
    return problems + _console_problems(driver)


def show_view(driver, view, kind, dataset):
    """Click the saved view's tab, then pick the data set in its menu."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    tabs = [tab for tab in driver.find_elements(By.CSS_SELECTOR,
                                                "#view-tabs span.view")
            if tab.get_attribute("textContent").strip() == view]
    assert tabs, f"no tab for the saved view {view!r}"
    driver.execute_script("arguments[0].scrollIntoView()", tabs[0])
    tabs[0].click()
    menu = Select(driver.find_element(By.ID, f"change_{kind}_dataset"))
    values = [option.get_attribute("value") for option in menu.options]
    menu.select_by_value(next(v for v in values if v.startswith(dataset)))


def test_page_loads_nothing_from_the_network(pages):
    page, cdn_page = pages
    assert external_resources(page.read_text()) == []
    assert external_resources(cdn_page.read_text())  # the check can fail


def test_default_view_renders_offline(driver, pages):
    page, _ = pages
    _open(driver, page)
    assert plot_problems(driver, "objective_curve") == []


@pytest.mark.parametrize("kind", CUSTOM_KINDS)
def test_custom_view_renders_offline(driver, pages, kind):
    page, _ = pages
    _open(driver, page)
    view = _views()[kind]
    show_view(driver, view, kind, "mnist")
    if kind in ("target_time_table", "run_status"):
        problems = table_problems(driver, kind, "mnist")
    else:
        problems = plot_problems(driver, kind, "mnist",
                                 LABEL_WORDS.get(kind, (None, None)))
    assert problems == [], f"view {view!r}"


def test_checks_fail_on_the_cdn_page(driver, pages):
    # The page as benchopt writes it is blank offline: the checks say so.
    _, cdn_page = pages
    _open(driver, cdn_page)
    problems = plot_problems(driver, "objective_curve")
    assert any("Plotly is not defined" in p for p in problems), problems
    assert any("no trace with data points" in p for p in problems), problems
