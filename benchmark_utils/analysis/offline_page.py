"""benchopt's HTML result page, made to render with no network.

benchopt 1.10 writes a result page that loads plotly.js 2.12.1 (the
curves and bar charts), Grid.js 6.2.0 (the tables) and anime.js (the
title animation) from CDNs, and a web font from Google Fonts: opened
offline it shows no plot and no table. This module puts the scripts and
the table style into the page itself, read from the npm packages that
``make setup`` installs in ``page_assets/node_modules`` (versions pinned
in ``page_assets/package.json``), and drops the web font (the page then
uses the system's sans-serif). The page weighs about 3.8 MB more.

Command line::

    python -m benchmark_utils.analysis.offline_page [--open] PATH [PATH ...]

PATH is a result page (``.html``, rewritten in place), a result file
(``.parquet`` or ``.csv``: its page is written next to it, with the plots
and views of ``config.yml``, as ``benchopt plot`` would) or a folder
(every result page in it that still loads a script from a CDN).
``--open`` opens the newest page written in the web browser.
"""
import argparse
import json
import re
import sys
import webbrowser
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
ASSETS_DIR = ROOT / "page_assets"

# Each resource that benchopt 1.10's result page loads from a CDN: the npm
# package and the file in it that replace it. anime.js is 2.1.0 and not the
# template's 2.0.2: same API, but 2.0.2's package lists its build tool as a
# runtime dependency (64 more packages for one 11 kB file).
CDN_ASSETS = {
    "https://cdn.plot.ly/plotly-2.12.1.min.js":
        ("plotly.js-dist-min", "plotly.min.js"),
    "https://cdn.jsdelivr.net/npm/gridjs@6.2.0/dist/gridjs.umd.js":
        ("gridjs", "dist/gridjs.umd.js"),
    "https://cdn.jsdelivr.net/npm/gridjs@6.2.0/dist/theme/mermaid.min.css":
        ("gridjs", "dist/theme/mermaid.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/animejs/2.0.2/anime.min.js":
        ("animejs", "anime.min.js"),
}
# Only a font comes from there: the page reads as well without it.
DROPPED_HOSTS = ("https://fonts.googleapis.com", "https://fonts.gstatic.com")

# <script src="http..."></script> and <link ... href="http..."> tags.
_TAG = re.compile(
    r'<script\b[^>]*\bsrc="(?P<script>https?://[^"]+)"[^>]*>\s*</script>'
    r'|<link\b[^>]*\bhref="(?P<link>https?://[^"]+)"[^>]*>', re.I)


class OfflinePageError(RuntimeError):
    """The page cannot be made to render offline (message says why)."""


def external_resources(html):
    """The addresses of the scripts and links an HTML page fetches."""
    return [m.group("script") or m.group("link")
            for m in _TAG.finditer(html)]


def is_cdn_result_page(html):
    """Whether ``html`` is a benchopt result page that loads from CDNs."""
    return any(url in CDN_ASSETS for url in external_resources(html))


def _pinned_versions(assets_dir):
    return json.loads((assets_dir / "package.json").read_text())[
        "dependencies"]


def read_asset(url, assets_dir=ASSETS_DIR):
    """The text of the local copy of ``url``, checked against the version
    pinned in ``page_assets/package.json``."""
    package, file = CDN_ASSETS[url]
    folder = assets_dir / "node_modules" / package
    install = "run `make page-assets` (it needs npm)"
    if not (folder / file).is_file():
        raise OfflinePageError(
            f"{folder / file} is missing, needed for {url}: {install}")
    installed = json.loads((folder / "package.json").read_text())["version"]
    pinned = _pinned_versions(assets_dir)[package]
    if installed != pinned:
        raise OfflinePageError(
            f"{folder} holds {package} {installed}, "
            f"page_assets/package.json pins {pinned}: {install}")
    return (folder / file).read_text(encoding="utf-8")


def _inline(tag, text):
    # The HTML parser ends a <script> or <style> at the first "</script" or
    # "</style", and "<!--" changes how it reads what follows; "<\/" and
    # "<\!" mean the same in JavaScript strings and regular expressions and
    # in CSS.
    text = re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.I)
    text = text.replace("<!--", "<\\!--")
    return f"<{tag}>\n{text}\n</{tag}>"


def make_offline(html, assets_dir=ASSETS_DIR):
    """``html`` with its CDN scripts and style inlined and its web font
    dropped. Raises :class:`OfflinePageError` when it would still fetch
    anything (a resource this module does not know, as a newer benchopt
    template may load)."""
    unknown = [url for url in external_resources(html)
               if url not in CDN_ASSETS and not url.startswith(DROPPED_HOSTS)]
    if unknown:
        raise OfflinePageError(
            "the page loads resources with no local copy: "
            + ", ".join(unknown) + f"; known: {', '.join(CDN_ASSETS)}")

    def replace(match):
        url = match.group("script") or match.group("link")
        if url.startswith(DROPPED_HOSTS):
            return ""
        tag = "script" if match.group("script") else "style"
        return _inline(tag, read_asset(url, assets_dir))

    return _TAG.sub(replace, html)


def rewrite_page(path, assets_dir=ASSETS_DIR):
    """Make the page at ``path`` offline, in place; returns whether it
    changed (a page already offline is left as it is)."""
    path = Path(path)
    html = path.read_text(encoding="utf-8")
    offline = make_offline(html, assets_dir)
    if offline == html:
        return False
    path.write_text(offline, encoding="utf-8")
    return True


def render_page(result_file, benchmark_dir=ROOT, kinds=None):
    """Write benchopt's result page of ``result_file`` next to it, with
    the plots and views of the benchmark's ``config.yml`` (CDN scripts, as
    benchopt writes it); returns its path. ``kinds``: only these plot
    kinds (their data is most of the time taken). The result file is not
    modified (``benchopt plot`` writes the plot settings into it)."""
    from benchopt.benchmark import Benchmark
    from benchopt.plotting import _sanitize_config
    from benchopt.plotting.generate_html import (
        get_results,
        render_all_results,
    )
    from benchopt.results.parquet import get_metadata

    result_file = Path(result_file).resolve()
    if result_file.suffix not in (".parquet", ".csv"):
        raise OfflinePageError(
            f"result_file must be a .parquet or .csv file, got {result_file}")
    benchmark = Benchmark(benchmark_dir)
    config = benchmark.get_plot_config(
        default_config=get_metadata(result_file))
    config = _sanitize_config(config)
    if kinds is not None:
        config["plots"] = list(kinds)
    html_root = result_file.parent
    results = get_results([result_file], html_root, benchmark, config)
    home = quote(f"{benchmark.name}.html")
    html, = render_all_results(results, benchmark, home=home)
    page = html_root / results[0]["page"]
    page.write_text(html, encoding="utf-8")
    return page


def write_offline_pages(path, assets_dir=ASSETS_DIR, benchmark_dir=ROOT):
    """The pages made offline for ``path`` (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise OfflinePageError(f"{path} does not exist")
    if path.is_dir():
        pages = [page for page in sorted(path.glob("*.html"))
                 if is_cdn_result_page(page.read_text(encoding="utf-8"))]
    elif path.suffix == ".html":
        pages = [path]
    elif path.suffix in (".parquet", ".csv"):
        pages = [render_page(path, benchmark_dir)]
    else:
        raise OfflinePageError(
            f"PATH must be a folder, a .html page or a .parquet / .csv "
            f"result file, got {path}")
    for page in pages:
        rewrite_page(page, assets_dir)
    return pages


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmark_utils.analysis.offline_page",
        description="Make benchopt's HTML result pages render offline.")
    parser.add_argument("paths", nargs="+", metavar="PATH", type=Path,
                        help="a result page (.html), a result file "
                             "(.parquet, .csv) or a folder of pages")
    parser.add_argument("--open", action="store_true",
                        help="open the newest page written in the browser")
    args = parser.parse_args(argv)
    written = []
    try:
        for path in args.paths:
            written += write_offline_pages(path)
    except OfflinePageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for page in written:
        print(f"offline page: {page} ({page.stat().st_size:,} bytes)")
    if not written:
        print("no page loads a CDN script: nothing to do")
    elif args.open:
        newest = max(written, key=lambda page: page.stat().st_mtime)
        webbrowser.open_new_tab("file://" + quote(str(newest.absolute())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
