"""The notebooks' widgets in a real browser: JupyterLab on localhost driven by Playwright in Chromium.

For every notebook whose code uses ipywidgets, the test opens a copy of it in JupyterLab, runs all
cells and waits for the kernel to be idle. Then, for each explorer (each cell output that shows a
widget: ``interact``/``interactive`` or a box of controls with an Output widget) it changes the first
control (the next option of a dropdown, one step of a slider, a checkbox flipped, ...) and asserts
that the control took the new value, that the explorer's Output widget shows something different
afterwards (its image bytes or text), and that no error was shown anywhere in the notebook: no error
output in any cell, no traceback in any stderr text, no "Error displaying widget".

``make test-browser`` installs what this needs (Chromium from the system's packages, Playwright for
Python from the ``browser`` extra; Playwright's own browser builds are never downloaded) and runs this
file with HRNET_EDU_BROWSER_TESTS=1. Without that variable the tests are skipped, so that ``pytest
tests`` stays as fast as before; with it, a missing Playwright or Chromium is an error, not a skip.
HRNET_EDU_CHROMIUM names the browser (default: ``chromium`` on PATH, i.e. /usr/bin/chromium).
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_setup import browser_problems, chromium_path  # pytest puts this folder on sys.path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
# Linked beside the notebooks' copies: what the notebooks read through "../" (read-only).
LINKED = ("data_samples", "benchmarks")
USES_WIDGETS = re.compile(r"\bipywidgets\b|\binteract(ive)?\(|\bwidgets\.")

RUN_ALL_TIMEOUT_S = 900  # one notebook: 15-30 s on 2 shared cores now, up to ~2 min when busy
UPDATE_TIMEOUT_S = 120  # one explorer's redraw after its control changed
SERVER_START_TIMEOUT_S = 120


def widget_notebooks() -> list[Path]:
    """The notebooks one of whose code cells uses ipywidgets."""
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        if any(c["cell_type"] == "code" and USES_WIDGETS.search("".join(c["source"])) for c in cells):
            found.append(path)
    return found


def test_widget_notebooks_found():
    """The browser test has notebooks to open (the discovery itself needs no browser)."""
    names = [p.name for p in widget_notebooks()]
    assert names, f"no notebook under {NOTEBOOKS} uses ipywidgets"
    assert "01_heatmaps.ipynb" in names, names


# ---------------------------------------------------------------------------------------------------
# What is missing, and whether that is a skip or an error


def _missing() -> list[str]:
    missing = browser_problems()
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing.append('JupyterLab is not installed (pip install -e ".[dev]")')
    return missing


def _require_browser_deps() -> None:
    missing = _missing()
    if os.environ.get("HRNET_EDU_BROWSER_TESTS") == "1":
        if missing:
            pytest.fail("the browser test cannot run: " + "; ".join(missing), pytrace=False)
        return
    if missing:
        pytest.skip("browser test of the widgets: " + "; ".join(missing)
                    + " — `make test-browser` installs them")
    pytest.skip("the browser test of the widgets runs only under `make test-browser` "
                "(HRNET_EDU_BROWSER_TESTS=1): it executes every widget notebook in JupyterLab")


# ---------------------------------------------------------------------------------------------------
# JupyterLab on localhost, on copies of the notebooks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))


def _lab_home(tmp: Path) -> Path:
    """A root folder holding copies of the notebooks (JupyterLab never writes to the repository),
    and Jupyter's config, data and settings folders, isolated from the user's."""
    root = tmp / "root"
    (root / "notebooks").mkdir(parents=True)
    for path in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(path, root / "notebooks" / path.name)
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    # "python3", the notebooks' kernelspec, is the Python running this test (the project's venv).
    _write_json(tmp / "data" / "kernels" / "python3" / "kernel.json", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (hrnet-edu)", "language": "python"})
    settings = tmp / "settings" / "@jupyterlab"
    # every cell stays in the page (no virtual scrolling), nothing is saved, no news pop-up
    _write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})
    _write_json(settings / "docmanager-extension" / "plugin.jupyterlab-settings", {"autosave": False})
    _write_json(settings / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    return root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, token) of a JupyterLab server started for this module."""
    _require_browser_deps()
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = _lab_home(tmp)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    env.pop("MPLBACKEND", None)  # the kernel draws as in anyone's JupyterLab (tests/conftest.py sets Agg)
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True", "--allow-root"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                log_tail = (tmp / "server.log").read_text()[-2000:]
                pytest.fail(f"JupyterLab exited ({server.returncode}): {log_tail}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {url} within {SERVER_START_TIMEOUT_S} s")
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # the system's Chromium, never a browser build downloaded by Playwright
        chromium = p.chromium.launch(executable_path=chromium_path(), headless=True)
        yield chromium
        chromium.close()


# ---------------------------------------------------------------------------------------------------
# What the page shows, read in the browser (JupyterLab exposes its application as window.jupyterapp)

PANEL = "window.jupyterapp.shell.currentWidget"

KERNEL_IDLE = f"""() => {{
  const panel = window.jupyterapp && {PANEL};  // the application is exposed once it has started
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return Boolean(kernel) && kernel.status === 'idle';
}}"""

SHUT_DOWN_KERNEL = f"""() => {{
  const panel = window.jupyterapp && {PANEL};
  return panel && panel.sessionContext ? panel.sessionContext.shutdown() : null;
}}"""

START_RUN_ALL = """() => {
  window.__runAll = null;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    ok => { window.__runAll = {ok}; }, e => { window.__runAll = {error: String(e)}; });
}"""

# The code cells: index in the notebook, execution count, error outputs, widget views in the outputs.
CELLS = f"""() => {PANEL}.content.widgets.map((cell, index) => {{
  if (cell.model.type !== 'code') return null;
  const outputs = cell.model.outputs.toJSON();
  return {{
    index, executionCount: cell.model.executionCount,
    errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
    widgetViews: outputs.filter(o => o.data && o.data['application/vnd.jupyter.widget-view+json']).length,
  }};
}}).filter(Boolean)"""

# Errors shown anywhere in the notebook: stderr text with a traceback or an exception line (error
# outputs are drawn as stderr too, also inside Output widgets), and widgets that failed to display.
SHOWN_ERRORS = f"""() => {{
  const node = {PANEL}.content.node;
  const found = [];
  const stderr = node.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]');
  for (const el of stderr) {{
    const text = el.textContent;
    if (/Traceback|^\\s*[A-Za-z_.]*(Error|Exception)\\b/m.test(text)) {{
      found.push(text.trim().split('\\n').filter(line => line.trim()).slice(-3).join(' | '));
    }}
  }}
  for (const el of node.querySelectorAll('.jp-OutputArea-output')) {{
    if (el.textContent.startsWith('Error displaying widget')) found.push(el.textContent);
  }}
  for (const el of node.querySelectorAll('.jupyter-widgets-error-widget')) found.push(el.textContent);
  for (const el of document.querySelectorAll('.jp-Dialog')) found.push('dialog: ' + el.textContent);
  return found;
}}"""

CONTROL_KINDS = {  # ipywidgets' CSS class of a control -> how the test changes it
    "widget-dropdown": "select", "widget-select": "select", "widget-slider": "slider",
    "widget-checkbox": "checkbox", "widget-toggle-button": "toggle", "widget-toggle-buttons": "buttons",
    "widget-radio": "radio",
}

# Marks every explorer (a cell output whose content is a widget, not one nested in an Output widget)
# and its first control with data-widget-test, and describes them.
MARK_EXPLORERS = f"""(kinds) => {{
  const explorers = [];
  {PANEL}.content.widgets.forEach((cell, cellIndex) => {{
    for (const out of cell.node.querySelectorAll('.jp-Cell-outputArea .jp-OutputArea-output')) {{
      if (!out.querySelector(':scope > .jupyter-widgets') || out.closest('.widget-output')) continue;
      const id = 'explorer-' + explorers.length;
      out.dataset.widgetTest = id;
      let control = null, kind = null;
      for (const el of out.querySelectorAll('.jupyter-widgets')) {{
        kind = Object.keys(kinds).find(k => el.classList.contains(k));
        if (kind) {{ control = el; break; }}
      }}
      if (control) control.dataset.widgetTest = id + '-control';
      // the description: a label beside the control, or the text of a checkbox or a button
      const texts = control
        ? [...control.querySelectorAll('.widget-label, .widget-label-basic'), control] : [];
      const label = texts.map(el => el.textContent.replace(/\\u200b/g, '').trim()).find(Boolean);
      explorers.push({{
        id, cellIndex, kind: kind ? kinds[kind] : null, label: label || kind || 'no control',
        outputs: out.querySelectorAll('.widget-output').length,
      }});
    }}
  }});
  return explorers;
}}"""

# What an explorer's Output widgets show: image bytes, SVG and text.
OUTPUT_SNAPSHOT = """(id) => {
  const explorer = document.querySelector(`[data-widget-test="${id}"]`);
  const shown = [];
  for (const out of explorer.querySelectorAll('.widget-output')) {
    for (const img of out.querySelectorAll('img')) shown.push('img ' + img.src);
    for (const svg of out.querySelectorAll('svg')) shown.push('svg ' + svg.outerHTML);
    const text = out.textContent.trim();
    if (text) shown.push('text ' + text);
  }
  return shown;
}"""


def _control_value(control) -> str:
    """The control's value as the page shows it."""
    return control.evaluate("""el => {
      const select = el.querySelector('select');
      if (select) return Array.from(select.selectedOptions).map(o => o.value).join(',');
      const readout = el.querySelector('.widget-readout');
      if (readout) return readout.textContent.trim();
      const box = el.querySelector('input[type=checkbox]');
      if (box) return String(box.checked);
      if (el.matches('.widget-toggle-button')) return el.matches('.mod-active') ? 'pressed' : 'not pressed';
      const radio = el.querySelector('input[type=radio]:checked');
      if (radio) return radio.value;
      return Array.from(el.querySelectorAll('.mod-active')).map(b => b.textContent.trim()).join(',');
    }""")


def _change(control, kind: str) -> None:
    """Changes a control the way a reader would: keyboard for a slider, a click or a select otherwise."""
    if kind == "select":
        select = control.locator("select")
        options = select.locator("option").count()
        current = select.evaluate("s => s.selectedIndex")
        select.select_option(index=current + 1 if current + 1 < options else current - 1)
    elif kind == "slider":
        handle = control.locator(".noUi-handle").first
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        handle.press("ArrowLeft" if at_max else "ArrowRight")
    elif kind == "checkbox":
        control.locator("input[type=checkbox]").click()
    elif kind == "toggle":
        control.click()
    elif kind in ("buttons", "radio"):
        choices = control.locator("button:not(.mod-active)" if kind == "buttons" else "input:not(:checked)")
        choices.first.click()
    else:
        raise AssertionError(f"no way to change a control of kind {kind!r}")


def _wait_until(page, condition, timeout_s: float, what: str, poll_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (waited {timeout_s:.0f} s)")
        page.wait_for_timeout(poll_s * 1000)


def _run_all(page, name: str) -> list[dict]:
    """Runs every cell of the open notebook; returns the code cells once the kernel is idle."""
    page.evaluate(START_RUN_ALL)
    page.wait_for_function("() => window.__runAll !== null", timeout=RUN_ALL_TIMEOUT_S * 1000,
                           polling=500)
    page.wait_for_function(KERNEL_IDLE, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=500)
    cells = page.evaluate(CELLS)
    cell_errors = [f"cell {c['index']}: {e}" for c in cells for e in c["errors"]]
    assert not cell_errors, f"{name}: error output after running all cells: {cell_errors}"
    not_run = [c["index"] for c in cells if c["executionCount"] is None]
    assert not not_run, f"{name}: cells {not_run} did not run ({page.evaluate('() => window.__runAll')})"
    errors = page.evaluate(SHOWN_ERRORS)
    assert not errors, f"{name}: errors shown after running all cells: {errors}"
    return cells


def _check_explorer(page, name: str, explorer: dict) -> str:
    """Changes the explorer's first control; asserts that its output changed and no error was shown."""
    where = f"{name}, cell {explorer['cellIndex']}, the explorer whose first control is {explorer['label']!r}"
    assert explorer["kind"], f"{where}: no control that this test knows how to change"
    assert explorer["outputs"], f"{where}: the explorer has no Output widget to watch"

    def snapshot() -> list[str]:
        return page.evaluate(OUTPUT_SNAPSHOT, explorer["id"])

    _wait_until(page, lambda: bool(snapshot()), UPDATE_TIMEOUT_S, f"{where}: shows nothing before the change")
    before, t0 = snapshot(), time.monotonic()

    control = page.locator(f'[data-widget-test="{explorer["id"]}-control"]')
    control.scroll_into_view_if_needed()
    value_before = _control_value(control)
    _change(control, explorer["kind"])
    value_after = _control_value(control)
    change = f"{value_before!r} -> {value_after!r}"
    assert value_after != value_before, f"{where}: the {explorer['kind']} stayed at {value_before!r}"

    _wait_until(page, lambda: snapshot() not in ([], before), UPDATE_TIMEOUT_S,
                f"{where}: the output did not change after {change}")
    page.wait_for_function(KERNEL_IDLE, timeout=UPDATE_TIMEOUT_S * 1000, polling=500)
    after = snapshot()
    assert after and after != before, f"{where}: the output after {change} is empty or unchanged"
    errors = page.evaluate(SHOWN_ERRORS)
    assert not errors, f"{where}: errors shown after {change}: {errors}"
    return f"{explorer['label']} {change}: output changed in {time.monotonic() - t0:.1f} s"


# ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("notebook", widget_notebooks(), ids=lambda p: p.stem)
def test_widgets_respond_in_jupyterlab(notebook: Path, lab, browser, tmp_path):
    url, token = lab
    name = notebook.name
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        started = time.monotonic()
        page.goto(f"{url}/lab/tree/notebooks/{name}?reset&token={token}")
        page.wait_for_function(KERNEL_IDLE, timeout=SERVER_START_TIMEOUT_S * 1000)
        cells = _run_all(page, name)
        run_s = time.monotonic() - started

        widget_views = sum(c["widgetViews"] for c in cells)
        assert widget_views, f"{name} uses ipywidgets but no cell output holds a widget"
        _wait_until(page, lambda: len(page.evaluate(MARK_EXPLORERS, CONTROL_KINDS)) >= widget_views, 60,
                    f"{name}: JupyterLab did not draw the notebook's {widget_views} widget(s)")
        for explorer in page.evaluate(MARK_EXPLORERS, CONTROL_KINDS):
            print(f"\n{name}: {_check_explorer(page, name, explorer)}", end="")
        print(f"\n{name}: ran all cells in {run_s:.0f} s, {widget_views} widget(s) responded", end=" ")
    except Exception as failure:  # an assertion, or a time-out of Playwright's
        shot = tmp_path / f"{notebook.stem}.png"
        page.screenshot(path=shot, full_page=True)
        cause = None if isinstance(failure, AssertionError) else failure
        raise AssertionError(f"{failure}\n(the page: {shot})") from cause
    finally:
        page.evaluate(SHUT_DOWN_KERNEL)
        page.close()
