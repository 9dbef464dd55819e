"""The chapters' reveal.js slides (``make slides``) in a real browser, offline.

For every chapter the test serves ``build/`` on localhost (module scripts need http), opens
``slides/NN_name.slides.html`` in Chromium with every request outside localhost **blocked** (so a
CDN dependency fails the test), and asserts that reveal.js rendered the slides (``.reveal .slides
section`` present, reveal ready, at least three slides), that they advance (ArrowRight and Space change
the current slide's index), that every figure decoded (each <img> has naturalWidth > 0, the current
slide's images visible), and that the browser logged no error and requested nothing outside localhost.

Uses the set-up of ``test_widgets_in_jupyterlab.py`` (Playwright for Python from the ``browser``
extra, the system's Chromium). Skipped, with the reason, when the slides are not built or the browser
is missing — except under ``HRNET_EDU_BROWSER_TESTS=1`` (``.ci/run``), where either is an error.
"""

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
from browser_setup import (  # the same browser set-up (this folder is on sys.path)
    browser_problems,
    chromium_path,
)

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
CHAPTERS = sorted(p.stem for pattern in ("[0-9][0-9]_*.ipynb", "A[0-9]_*.ipynb")
                  for p in (REPO / "notebooks").glob(pattern))
LOAD_TIMEOUT_MS = 60_000


def _require() -> None:
    problems = browser_problems()
    absent = [c for c in CHAPTERS if not (BUILD / "slides" / f"{c}.slides.html").exists()]
    if absent:
        problems.append(f"slides not built for {', '.join(absent)} (make slides)")
    if not problems:
        return
    if os.environ.get("HRNET_EDU_BROWSER_TESTS") == "1":
        pytest.fail("the slides' browser test cannot run: " + "; ".join(problems), pytrace=False)
    pytest.skip("browser test of the slides: " + "; ".join(problems))


@pytest.fixture(scope="module")
def server():
    _require()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(BUILD))
    handler.func.log_message = lambda *args: None  # quiet
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), headless=True)
        yield chromium
        chromium.close()


# nbconvert's template loads reveal.js as a RequireJS module (no window.Reveal): read its state from the
# DOM — the "ready" class it sets, and the "present" class of the current slide.
INDEX_JS = """() => {
    const top = [...document.querySelectorAll('.reveal .slides > section')];
    const h = top.findIndex(s => s.classList.contains('present'));
    const v = h < 0 ? -1 : [...top[h].querySelectorAll(':scope > section')].findIndex(
        s => s.classList.contains('present'));
    return [h, Math.max(v, 0)];
}"""


def _index(page) -> tuple[int, int]:
    return tuple(page.evaluate(INDEX_JS))


def _wait_for_move(page, before: tuple[int, int]) -> tuple[int, int]:
    page.wait_for_function(f"() => ({INDEX_JS})().join() !== '{before[0]},{before[1]}'", timeout=10_000)
    return _index(page)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_slides_render_advance_and_show_their_figures(chapter, server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors, outside = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r):
        if r.request.url.startswith(server) or r.request.url.startswith("data:"):
            r.continue_()
        else:  # offline: nothing may come from a CDN
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{server}/slides/{chapter}.slides.html", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(".reveal .slides section", state="attached", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function("() => document.querySelector('.reveal').classList.contains('ready')",
                           timeout=LOAD_TIMEOUT_MS)
    assert page.evaluate("() => document.querySelectorAll('.reveal .slides > section').length") >= 3

    start = _index(page)
    assert start == (0, 0)
    page.keyboard.press("ArrowRight")
    after_arrow = _wait_for_move(page, start)
    assert after_arrow[0] == 1  # the next horizontal slide
    page.keyboard.press("Space")
    after_space = _wait_for_move(page, after_arrow)
    assert after_space > after_arrow  # Space goes forward (down a vertical stack, or right)

    page.wait_for_function("() => [...document.images].every(img => img.complete)", timeout=LOAD_TIMEOUT_MS)
    images = page.evaluate("() => [...document.images].map(img => img.naturalWidth)")
    assert images, f"{chapter}: no figure in the slides"
    broken = sum(w == 0 for w in images)
    assert not broken, f"{chapter}: {broken} of {len(images)} images did not decode"
    # the images of the slides visited so far are on screen with a size
    shown = page.evaluate("""() => [...document.querySelectorAll('.reveal .slides section.present img')]
                             .map(img => img.getBoundingClientRect().width)""")
    assert all(w > 0 for w in shown)
    assert not outside, f"{chapter}: requests outside localhost: {outside[:3]}"
    assert not errors, f"{chapter}: console errors: {errors[:3]}"
    page.close()
