"""
The built docs site in a real browser: builds it as ``./scripts/docs.sh`` does (warnings are
errors, every cross-reference resolves), serves it on a free port, and has Debian's Chromium follow
every link between its pages from the index: no page is missing, each renders its title, each link
to a section finds it, and every picture loads. Skips, saying why, where Chromium, Playwright or
Sphinx is missing.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

from tests.support import chromium
from tests.support.chromium import CHROMIUM
from tests.support.doc_blocks import DOCS

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
pytest.importorskip("sphinx", reason="Sphinx is not installed (test extra; ./scripts/docs.sh installs it)")
#: The generated source views (one per module, linked by "[source]"): fetched, not rendered.
SOURCE_VIEWS = "/_modules/"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    """The site built into a temporary directory and served on 127.0.0.1; yields its index URL."""
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, f"the docs build failed:\n{build.stdout[-3000:]}\n{build.stderr[-5000:]}"
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


_LINKS = """() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"""
_IDS = """() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)"""
_BROKEN_IMAGES = (
    """() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"""
)


def test_every_link_of_the_site_leads_to_a_page_with_its_title(site, tmp_path):
    origin = urlsplit(site).netloc
    to_visit, seen, checked_sources = [site], {site}, set()
    sections: list[tuple[str, str, str]] = []  # (linking page, target page, fragment)
    titles: dict[str, str] = {}
    ids: dict[str, set[str]] = {}
    with sync_api.sync_playwright() as playwright:
        context = chromium.launch(playwright, tmp_path / "profile", 1280, 900)
        try:
            page = context.new_page()
            while to_visit:
                url = to_visit.pop()
                response = page.goto(url)
                assert response is not None, url
                assert response.status == 200, f"{url}: {response.status}"
                heading = page.locator("div.body h1").first.inner_text().strip("¶ \n")
                assert heading, f"{url} renders no title"
                assert page.title().startswith(heading), f"{url}: title {page.title()!r}, heading {heading!r}"
                titles[url] = heading
                ids[url] = set(page.evaluate(_IDS))
                assert page.evaluate(_BROKEN_IMAGES) == [], f"{url}: pictures that do not load"
                for href in page.evaluate(_LINKS):
                    target, fragment = urldefrag(href)
                    if urlsplit(target).netloc != origin or not target.endswith(".html"):
                        continue
                    if SOURCE_VIEWS in target:
                        checked_sources.add(target)
                        continue
                    if fragment:
                        sections.append((url, target, fragment))
                    if target not in seen:
                        seen.add(target)
                        to_visit.append(target)
        finally:
            context.close()
    for url, target, fragment in sections:
        assert fragment in ids[target], f"{url} links to #{fragment} of {target}, which has no such section"
    for source in checked_sources:
        with urllib.request.urlopen(source) as answer:
            assert answer.status == 200, source
    pages = {urlsplit(u).path.rsplit("/", 1)[-1] for u in titles}
    expected = {f"{p.stem}.html" for p in DOCS.glob("*.md")} - {"README.html"}
    assert expected <= pages, f"pages no link leads to: {sorted(expected - pages)}"
    assert "Sending SMS" in titles.values()


def test_the_connection_page_lists_every_field_of_the_connection(site):
    from airflow_provider_orange_sms.config.connection_config import extra_fields

    with urllib.request.urlopen(site.replace("index.html", "connection.html")) as answer:
        page = answer.read().decode()
    table = page[page.index("<table") : page.index("</table>")]
    for field, spec in extra_fields():
        assert f'<span class="pre">{field.name}</span>' in table, field.name
        assert spec.label in table
