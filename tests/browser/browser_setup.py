"""What every browser test needs: Chromium (the system's, never Playwright's download) and Playwright
for Python. `make test-browser`, `make test-site` and `make test-slides` install both (`browser-deps`);
HRNET_EDU_CHROMIUM names the browser (default: ``chromium`` on PATH)."""

import os
import shutil


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None."""
    named = os.environ.get("HRNET_EDU_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_problems() -> list[str]:
    """What is missing for a browser test, one line each (empty: nothing)."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append('Playwright for Python is not installed (pip install -e ".[browser]")')
    if chromium_path() is None:
        where = os.environ.get("HRNET_EDU_CHROMIUM") or "chromium on PATH"
        missing.append(f"no Chromium found ({where}; on Debian/Ubuntu: apt-get install chromium)")
    return missing
