"""A minimal W3C WebDriver client for the tests: Debian's chromedriver driving
headless Chromium (both installed by scripts/install-test-deps.sh).

Only the commands the status page's test needs (new session, navigate, find
elements, type, click, read text, cookies, run a script), each one HTTP
request to chromedriver as the W3C WebDriver specification defines it; the
selenium package would bring its own driver manager and a dozen modules for
the same few calls.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from peers import free_port, port_open, wait_for

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the spec's web element identifier


class WebDriverError(Exception):
    pass


def available() -> bool:
    return bool(shutil.which("chromedriver") and (shutil.which("chromium")
                                                   or shutil.which("chromium-browser")))


class Browser:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(["chromedriver", f"--port={self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), 20, what="chromedriver")
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--window-size=1200,900"]}}}}
        self.session = ""
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        url = f"http://127.0.0.1:{self.port}" + (f"/session/{self.session}" if self.session else "") + path
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r).get("value")
        except urllib.error.HTTPError as e:
            raise WebDriverError(e.read().decode(errors="replace")[:500]) from None

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def text(self, css: str) -> str:
        return self._call("GET", f"/element/{self.find(css)}/text")

    def displayed(self, css: str) -> bool:
        return self._call("GET", f"/element/{self.find(css)}/displayed")

    def type(self, css: str, text: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/click")

    def script(self, js: str, *args):
        return self._call("POST", "/execute/sync", {"script": js, "args": list(args)})

    def source(self) -> str:
        return self._call("GET", "/source")

    def cookies(self) -> list[dict]:
        return self._call("GET", "/cookie")

    def wait_text(self, css: str, want: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = self.text(css)
            except WebDriverError:
                last = ""
            if want in last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"{css} never showed {want!r}; it shows {last[:500]!r}")

    def quit(self) -> None:
        try:
            if self.session:
                self._call("DELETE", "")
        except (WebDriverError, OSError):
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
