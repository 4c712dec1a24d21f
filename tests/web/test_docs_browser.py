"""/docs and /redoc in a real headless Chromium whose every request to another host goes to a
trap on this machine: each page draws the API's documentation, and the trap hears nothing.

Chromium sends loopback requests straight to the server and every other one through the proxy it
is given, here a trap that writes down each request's first line (a `CONNECT host:443` for
HTTPS) and answers 502. A script run before the page's own writes down every URL an element put
into the page asks for, and every one the page's Content-Security-Policy refused.
"""

from __future__ import annotations

import shutil
import socketserver
import threading
from collections.abc import Iterator
from typing import Any, Final

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import Server
from tests.web.browser import WAIT_S

pytestmark = pytest.mark.e2e

TITLE: Final = "Expense Tracker API"
# Chromium's own services (accounts, push messaging), which it calls on now and then whatever the
# flags say: never a page's (a page's fonts or scripts from Google would be on googleapis.com or
# gstatic.com, which count).
CHROMIUM_ITSELF: Final = ".google.com:443"
# Before the page's scripts: the URL of every element added with a src or href, and of every
# load the Content-Security-Policy refused.
WATCH: Final = """
window.__loads = []; window.__refused = [];
document.addEventListener('securitypolicyviolation', e => window.__refused.push(e.blockedURI));
new MutationObserver(records => {
  for (const record of records) for (const node of record.addedNodes) {
    const all = node.querySelectorAll ? [node, ...node.querySelectorAll('[src], [href]')] : [];
    for (const e of all) for (const a of ['src', 'href']) {
      if (e.getAttribute && e.getAttribute(a) && e.tagName !== 'A') window.__loads.push(e[a]);
    }
  }
}).observe(document, {childList: true, subtree: true});
"""


class Trap(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Heard)
        self.heard: list[str] = []
        self.lock = threading.Lock()


class _Heard(socketserver.StreamRequestHandler):
    server: Trap

    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        target = line.partition(" ")[2].partition(" ")[0]
        if not target.endswith(CHROMIUM_ITSELF):
            with self.server.lock:
                self.server.heard.append(line)
        self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    server = Trap()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def offline_chromium(trap: Trap, chromium_driver: WebDriver) -> Iterator[WebDriver]:
    """A headless Chromium of its own (the session's, asked for first, stands for the check that
    Chromium is here), every request to another host sent to the trap, and no traffic of its
    own in the background."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary is not None
    assert driver is not None
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--proxy-server=http://127.0.0.1:{trap.server_address[1]}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-domain-reliability",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-client-side-phishing-detection",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-pings",
        "--disable-features=OptimizationHints,Translate,MediaRouter,AutofillServerCommunication",
    ):
        options.add_argument(argument)
    chromium = webdriver.Chrome(options=options, service=Service(driver))
    chromium.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    yield chromium
    chromium.quit()


def _until(chromium: WebDriver, script: str) -> Any:
    wait = WebDriverWait(chromium, WAIT_S, ignored_exceptions=(WebDriverException,))
    return wait.until(lambda driver: driver.execute_script(script))


def _elsewhere(chromium: WebDriver, base_url: str) -> list[str]:
    loads: list[str] = chromium.execute_script(
        "return [...window.__loads, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    return sorted({url for url in loads if not url.startswith((f"{base_url}/", "data:"))})


def test_swagger_ui_draws_the_api_from_this_server_alone(
    offline_chromium: WebDriver, web_site: Server, trap: Trap
) -> None:
    trap.heard.clear()
    offline_chromium.get(f"{web_site.base_url}/docs")

    title = _until(
        offline_chromium,
        "const t = document.querySelector('.swagger-ui .info .title');"
        " return document.querySelectorAll('.opblock').length > 0 && t && t.textContent",
    )
    assert title.startswith(TITLE)
    paths = {
        e.text for e in offline_chromium.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert "/api/expenses" in paths
    assert _elsewhere(offline_chromium, web_site.base_url) == []
    assert offline_chromium.execute_script("return window.__refused") == []
    assert trap.heard == []


def test_redoc_draws_the_api_and_its_logo_from_elsewhere_is_refused(
    offline_chromium: WebDriver, web_site: Server, trap: Trap
) -> None:
    trap.heard.clear()
    offline_chromium.get(f"{web_site.base_url}/redoc")

    title = _until(
        offline_chromium,
        "const h = document.querySelector('.api-info h1'); return h && h.textContent",
    )
    assert title.startswith(TITLE)
    # ReDoc's side menu always draws Redocly's logo from its CDN: wait until that has been
    # tried (the image is refused, or loaded, or failed) and the page has settled.
    _until(
        offline_chromium,
        "return window.__refused.length > 0 || window.__loads.some(u => u.includes('logo'))"
        " && [...document.images].every(i => i.complete)",
    )
    elsewhere = _elsewhere(offline_chromium, web_site.base_url)
    assert sorted(set(offline_chromium.execute_script("return window.__refused"))) == elsewhere
    assert trap.heard == []
