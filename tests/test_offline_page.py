"""benchmark_utils.analysis.offline_page without a browser: what it puts
into a page, what it refuses, and that the installed scripts are the
versions benchopt's template was written for (tests/test_html_page.py
opens the result in Chromium)."""
import json
import re

import pytest

from benchmark_utils.analysis import offline_page
from benchmark_utils.analysis.offline_page import (
    CDN_ASSETS,
    OfflinePageError,
    external_resources,
    make_offline,
    read_asset,
    rewrite_page,
    write_offline_pages,
)

PLOTLY = "https://cdn.plot.ly/plotly-2.12.1.min.js"
GRID_CSS = "https://cdn.jsdelivr.net/npm/gridjs@6.2.0/dist/theme/mermaid.min.css"
FONT = "https://fonts.googleapis.com/css2?family=Kanit:wght@300&display=swap"


def _fake_assets(folder, versions=None, texts=None):
    """A page_assets folder whose files are short marked texts."""
    pins = {package: "1.0.0" for package, _ in CDN_ASSETS.values()}
    texts = texts or {}
    for url, (package, file) in CDN_ASSETS.items():
        path = folder / "node_modules" / package / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(texts.get(url, f"/* local copy of {url} */"))
        version = (versions or {}).get(package, pins[package])
        (folder / "node_modules" / package / "package.json").write_text(
            json.dumps({"name": package, "version": version}))
    (folder / "package.json").write_text(json.dumps({"dependencies": pins}))
    return folder


def _page(*urls):
    tags = []
    for url in urls:
        if url.endswith(".js"):
            tags.append(f'<script src="{url}"></script>')
        else:
            tags.append(f'<link href="{url}" rel="stylesheet">')
    return ("<html><head>" + "\n".join(tags) + "</head><body>"
            '<a href="https://benchopt.github.io">site</a>'
            "<script>var inline = 1;</script></body></html>")


def test_cdn_scripts_and_style_are_inlined(tmp_path):
    assets = _fake_assets(tmp_path)
    html = _page(*CDN_ASSETS, FONT)
    offline = make_offline(html, assets)
    assert external_resources(offline) == []
    for url in CDN_ASSETS:
        assert f"/* local copy of {url} */" in offline
    assert "fonts.googleapis" not in offline
    # a link the page does not load is kept
    assert 'href="https://benchopt.github.io"' in offline
    assert offline.count("<style>") == 1  # the Grid.js theme
    assert offline.count("<script>") == 4  # 3 scripts + the page's own


def test_closing_tags_inside_a_script_do_not_end_it(tmp_path):
    assets = _fake_assets(tmp_path, texts={
        PLOTLY: 'var s = "</script><!-- x"; var t = "</SCRIPT>";',
        GRID_CSS: '.a::after { content: "</style>"; }',
    })
    offline = make_offline(_page(PLOTLY, GRID_CSS), assets)
    # only the page's own tags close a script or a style
    assert len(re.findall(r"</script", offline, re.I)) == 2
    assert len(re.findall(r"</style", offline, re.I)) == 1
    assert "<!--" not in offline
    assert r'"<\/script><\!-- x"' in offline


def test_a_resource_with_no_local_copy_is_refused(tmp_path):
    assets = _fake_assets(tmp_path)
    unknown = "https://cdn.plot.ly/plotly-3.0.0.min.js"
    with pytest.raises(OfflinePageError, match=re.escape(unknown)):
        make_offline(_page(PLOTLY, unknown), assets)


def test_an_installed_version_other_than_the_pin_is_refused(tmp_path):
    assets = _fake_assets(tmp_path, versions={"gridjs": "6.0.0"})
    message = r"gridjs 6\.0\.0.*pins 1\.0\.0.*make page-assets"
    with pytest.raises(OfflinePageError, match=message):
        make_offline(_page(GRID_CSS), assets)


def test_missing_assets_say_how_to_install_them(tmp_path):
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {}}))
    with pytest.raises(OfflinePageError, match="make page-assets"):
        make_offline(_page(PLOTLY), tmp_path)


def test_rewriting_twice_changes_nothing(tmp_path):
    assets = _fake_assets(tmp_path / "assets")
    page = tmp_path / "page.html"
    page.write_text(_page(*CDN_ASSETS))
    assert rewrite_page(page, assets)
    once = page.read_text()
    assert not rewrite_page(page, assets)
    assert page.read_text() == once


def test_a_folder_rewrites_only_its_cdn_result_pages(tmp_path):
    assets = _fake_assets(tmp_path / "assets")
    pages = tmp_path / "outputs"
    pages.mkdir()
    (pages / "run.html").write_text(_page(*CDN_ASSETS))
    # benchopt's index of runs loads other libraries: left alone
    index = _page("https://code.jquery.com/jquery-3.5.1.min.js")
    (pages / "index.html").write_text(index)
    written = write_offline_pages(pages, assets)
    assert [page.name for page in written] == ["run.html"]
    assert external_resources((pages / "run.html").read_text()) == []
    assert (pages / "index.html").read_text() == index


def test_command_line_rejects_a_path_it_cannot_use(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("")
    assert offline_page.main([str(notes)]) == 1
    assert "PATH must be a folder" in capsys.readouterr().err
    assert offline_page.main([str(tmp_path / "missing.html")]) == 1


def test_installed_scripts_are_the_template_versions():
    # page_assets/node_modules, as `make page-assets` installs it: the
    # plotly.js build says its own version in its first lines.
    plotly = read_asset(PLOTLY)
    assert re.search(r"plotly\.js v2\.12\.1\b", plotly[:300])
    for url in CDN_ASSETS:
        assert len(read_asset(url)) > 1000, url
