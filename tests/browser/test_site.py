"""The course website (``make site`` → ``site/``) in a real browser: Playwright driving Chromium.

The site is served over a local HTTP server on 127.0.0.1, and every page of it is opened: each must
load without a console error, a failed request or a request leaving the machine; every ``<img>`` must
have loaded (naturalWidth > 0); its math must be typeset by the bundled MathJax (each math element holds
MathJax's output, no raw ``$…$`` or ``\\(…\\)`` is left in the text, and a notebook whose markdown has
``$…$`` shows typeset math); every link of the table of contents must lead to an existing page and
anchor. The table of contents lists the notebooks in course order, each notebook page links to its
source and the command that runs it, and search finds "exchange" (notebook 04), over HTTP and from
``file://``. A failure names the page.

``make test-site`` builds the site, installs Playwright (the ``browser`` extra) and Chromium (the
system's package), and runs this file with HRNET_EDU_SITE_TESTS=1, under which anything missing is an
error. Without that variable the tests are skipped with the reason (the site not built, Playwright or
Chromium missing, or simply not under ``make test-site``), so that ``pytest tests`` stays fast and never
checks a stale site/. HRNET_EDU_CHROMIUM names the browser (default: ``chromium`` on PATH).
"""

import functools
import html.parser
import http.server
import importlib.util
import json
import os
import re
import threading
import urllib.parse
from pathlib import Path

import pytest
from browser_setup import browser_problems, chromium_path  # pytest puts this folder on sys.path

REPO = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("HRNET_EDU_SITE", REPO / "site"))
NOTEBOOKS = REPO / "notebooks"
# Chromium as the project's machines run it: no sandbox (root), no calls home on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TIMEOUT_MS = 60_000  # MathJax typesets a long notebook page in a few seconds on 2 shared cores
SEARCH_WORD, SEARCH_HIT = "exchange", "notebooks/04_multi_scale_fusion.html"


def _build_module():
    spec = importlib.util.spec_from_file_location("build_site", REPO / "docs" / "site" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _build_module()


def expected_pages() -> list[str]:
    """The site's pages, relative to site/: the course map, every notebook, the docs that exist,
    and Sphinx's search and index pages."""
    pages = ["index.html"] + [f"notebooks/{p.stem}.html" for p in BUILD.course_notebooks(REPO)]
    pages += [doc.removesuffix(".md") + ".html" for doc, _ in BUILD.EXTRA_DOCS if (REPO / doc).is_file()]
    return pages + ["search.html", "genindex.html"]


# ---------------------------------------------------------------------------------------------------
# What is missing, and whether that is a skip or an error


def _missing() -> list[str]:
    missing = [] if (SITE / "index.html").is_file() else [
        f"the site is not built ({SITE}/index.html: run `make site`)"]
    return missing + browser_problems()


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing and os.environ.get("HRNET_EDU_SITE_TESTS") == "1":
        pytest.fail("the browser test of the site cannot run: " + "; ".join(missing), pytrace=False)
    if missing:
        pytest.skip("browser test of the site: " + "; ".join(missing) + " — `make test-site` does it all")
    if os.environ.get("HRNET_EDU_SITE_TESTS") != "1":
        pytest.skip("the browser test of the site runs under `make test-site` (HRNET_EDU_SITE_TESTS=1), "
                    "which rebuilds site/ first so that it never tests a stale site")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server(browser):
    """The base URL of site/ served on 127.0.0.1 (a free port), for this module."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler,
                                                                                directory=str(SITE)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---------------------------------------------------------------------------------------------------
# A page, opened with every problem recorded


class OpenedPage:
    """A browser page that records console errors, page errors, failed requests, and blocks (and
    records) every request that would leave the machine."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed",
                     lambda r: self.problems.append(f"failed request: {r.url} ({r.failure})"))
        self.page.route("**/*", self._local_only)
        self.page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)

    def _local_only(self, route):
        url = route.request.url
        if url.startswith(("file://", "http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            self.problems.append(f"request leaving the machine: {url}")
            route.abort()

    def close(self):
        self.page.close()


@pytest.fixture
def open_page(browser):
    opened = []

    def _open(url: str) -> OpenedPage:
        opened.append(OpenedPage(browser, url))
        return opened[-1]

    yield _open
    for page in opened:
        page.close()


# Waits for MathJax (where the page loads it) to finish typesetting.
MATHJAX_DONE = """async () => {
  if (!document.querySelector('script[src*="mathjax"]')) return 'no MathJax';
  const started = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
  for (let i = 0; i < 300 && !started(); i++) await new Promise(r => setTimeout(r, 100));
  if (!started()) return 'MathJax did not start within 30 s';
  await MathJax.startup.promise;
  return 'typeset';
}"""

MATH_STATE = r"""() => {
  const main = document.querySelector('main') || document.body;
  const math = [...main.querySelectorAll('.math')];
  const untypeset = math.filter(el => !el.querySelector('mjx-container') && !el.matches('mjx-container'));
  // the prose a reader sees: no code, no cell outputs, no typeset math, no scripts
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .cell_output, .output')
    .forEach(el => el.remove());
  const text = clone.textContent;
  const raw = [...text.matchAll(/\$[^$\s][^$]{0,80}?\$|\\\([^)]{0,80}?\\\)|\\\[[\s\S]{0,80}?\\\]/g)]
    .map(m => m[0]);
  return {math: math.length, typeset: main.querySelectorAll('mjx-container').length,
          untypeset: untypeset.map(el => el.textContent.slice(0, 80)), raw};
}"""

IMAGES = """() => [...document.images].map(img => ({src: img.getAttribute('src'), complete: img.complete,
                                                 width: img.naturalWidth}))"""

TOC_LINKS = """() => [...document.querySelectorAll('nav.bd-docs-nav a[href], #pst-page-toc-nav a[href]')]
  .map(a => ({text: a.textContent.trim(), href: a.getAttribute('href'), url: a.href}))"""


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k in ("id", "name") and v)


@functools.cache
def _ids_of(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text())
    return frozenset(parser.ids)


def _dollar_math_in_markdown(page: str) -> bool:
    """Whether the notebook behind a page has ``$…$`` math in a markdown cell."""
    match = re.fullmatch(r"notebooks/(.+)\.html", page)
    if not match:
        return False
    nb = json.loads((NOTEBOOKS / f"{match.group(1)}.ipynb").read_text())
    return any(re.search(r"\$[^$\s][^$]*\$", "".join(c["source"])) for c in nb["cells"]
               if c["cell_type"] == "markdown")


def _check_toc_links(page: str, links: list[dict]) -> list[str]:
    """Each table-of-contents link leads to a file of the site and, if it names one, an anchor in it."""
    broken = []
    for link in links:
        target = urllib.parse.urlsplit(link["url"])
        local = urllib.parse.unquote(target.path)
        path = Path(local) if target.scheme == "file" else SITE / local.lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            broken.append(f"{link['text']!r} → {link['href']} (no such page)")
        elif target.fragment and urllib.parse.unquote(target.fragment) not in _ids_of(path):
            broken.append(f"{link['text']!r} → {link['href']} (no such anchor)")
    return broken


# ---------------------------------------------------------------------------------------------------


def test_expected_pages_built(browser):
    """Every page the course should have is in site/ (the notebooks found in notebooks/, the docs)."""
    absent = [p for p in expected_pages() if not (SITE / p).is_file()]
    assert not absent, f"pages missing from {SITE}: {absent} (rebuild with `make site`)"


def _page_problems(opened: OpenedPage, page: str) -> list[str]:
    """What is wrong with an opened page: errors, images, math, table of contents."""
    p = opened.page
    mathjax = p.evaluate(MATHJAX_DONE)
    p.wait_for_function("() => [...document.images].every(img => img.complete)", timeout=PAGE_TIMEOUT_MS)
    problems = list(opened.problems) + ([] if mathjax in ("no MathJax", "typeset") else [mathjax])

    not_loaded = [i["src"] for i in p.evaluate(IMAGES) if not i["width"]]
    if not_loaded:
        problems.append(f"images not loaded: {not_loaded}")
    math = p.evaluate(MATH_STATE)
    if math["untypeset"]:
        problems.append(f"math not typeset: {math['untypeset'][:5]}")
    if math["raw"]:
        problems.append(f"raw TeX left in the text: {math['raw'][:5]}")
    if _dollar_math_in_markdown(page) and not math["typeset"]:
        problems.append("the notebook's markdown has $…$ math, but the page shows no typeset math")
    links = p.evaluate(TOC_LINKS)
    if page != "search.html" and not links:
        problems.append("no table of contents")
    return problems + [f"table of contents: {b}" for b in _check_toc_links(page, links)]


@pytest.mark.parametrize("page", expected_pages())
def test_page_in_browser(page, server, open_page):
    """The page loads cleanly, its images loaded, its math is typeset, its table of contents resolves."""
    problems = _page_problems(open_page(f"{server}/{page}"), page)
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", ["index.html", "notebooks/01_heatmaps.html",
                                  "notebooks/02_oks_and_coco_ap.html"])
def test_page_from_file_url(page, open_page):
    """Opened from file:// (no server), pages load as cleanly, with their figures and typeset math."""
    problems = _page_problems(open_page((SITE / page).resolve().as_uri()), page)
    assert not problems, f"{page} (file://):\n  " + "\n  ".join(problems)


def test_toc_in_course_order(server, open_page):
    """The left-hand table of contents lists the course map, then every notebook in course order."""
    p = open_page(f"{server}/index.html").page
    hrefs = p.evaluate("() => [...document.querySelectorAll('nav.bd-docs-nav a[href]')]"
                       ".map(a => a.getAttribute('href'))")
    notebooks = [h.split("#")[0] for h in hrefs if h.startswith("notebooks/")]
    expected = [f"notebooks/{p.stem}.html" for p in BUILD.course_notebooks(REPO)]
    assert notebooks == expected, f"index.html: the table of contents lists {notebooks}, expected {expected}"
    # a notebook that states its time shows it in the table of contents
    header, rows = BUILD.readme_notebook_table((REPO / "README.md").read_text())
    labels = dict(zip(hrefs, p.evaluate("() => [...document.querySelectorAll('nav.bd-docs-nav a[href]')]"
                                        ".map(a => a.textContent.trim())"), strict=True))
    for path in BUILD.course_notebooks(REPO):
        stated = BUILD.notebook_time(json.loads(path.read_text()), rows.get(path.name),
                                     BUILD._time_column(header))
        label = labels[f"notebooks/{path.stem}.html"]
        assert not stated or stated in label, f"index.html: {label!r} does not show the time {stated!r}"


@pytest.mark.parametrize("notebook", BUILD.course_notebooks(REPO), ids=lambda p: p.stem)
def test_notebook_page_links_source_and_command(notebook, server, open_page):
    """A notebook page links to its source file (the very notebook, published beside the page), names
    the command that runs it, and shows a static view for each of its widget outputs."""
    page = f"notebooks/{notebook.stem}.html"
    p = open_page(f"{server}/{page}").page
    box = p.locator(".course-page-box")
    assert box.count() == 1, f"{page}: no box with the source link and the run command"
    href = box.locator("a").first.get_attribute("href")
    published = (SITE / "notebooks" / href)
    assert published.is_file() and published.read_bytes() == notebook.read_bytes(), \
        f"{page}: the source link {href} is not a copy of {notebook.relative_to(REPO)}"
    assert f"make lab NB=notebooks/{notebook.name}" in box.inner_text(), f"{page}: no run command"
    widget_views = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                       for c in json.loads(notebook.read_text())["cells"] for o in c.get("outputs", []))
    shown = p.locator(".widget-static-view").count()
    assert shown == widget_views, f"{page}: {widget_views} widget output(s), {shown} static view(s)"


@pytest.mark.parametrize("scheme", ["http", "file"])
def test_search_finds_notebook_04(scheme, server, open_page):
    """Sphinx's search page finds a word of notebook 04 and lists that notebook, served or from file://."""
    base = server if scheme == "http" else SITE.resolve().as_uri()
    opened = open_page(f"{base}/search.html?q={SEARCH_WORD}")
    p = opened.page
    p.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0"
                        " || /did not match|no results/i.test(document.body.innerText)",
                        timeout=PAGE_TIMEOUT_MS)
    hits = p.evaluate("() => [...document.querySelectorAll('#search-results li a')].map(a => a.href)")
    assert any(SEARCH_HIT in h for h in hits), f"search.html ({scheme}): {SEARCH_WORD!r} found {hits}"
    assert not opened.problems, f"search.html ({scheme}): {opened.problems}"
