"""The status page at / in a real headless browser (Debian's Chromium driven
through chromedriver by tests/webdriver.py), against the real agent."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest
from peers import Agent, LineSink, free_port, wait_for
from webdriver import Browser, available

TOKEN = "page-t0ken-123"


@pytest.fixture
def browser():
    assert available(), "chromium and chromedriver: run bash scripts/install-test-deps.sh"
    b = Browser()
    yield b
    b.quit()


def send(port: int, *lines: str) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall("".join(f"<14>1 2026-11-25T08:00:00Z {h} web - - - {m}\n"
                          for h, m in lines).encode())


def test_status_page_in_a_browser(tmp_path, browser):
    sink = LineSink()
    tcp = free_port()
    routes = (f"web-1 syslog+tcp://127.0.0.1:{sink.port}\n"
              "web-2 https://someone:pa55word@127.0.0.1:1/x?token=t0ps3cret\n")
    agent = Agent(tmp_path, {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp),
                             "API_TOKEN": TOKEN, "DRAIN_PAUSE_AFTER": "2",
                             "DRAIN_BACKOFF_MAX": "0.2", "SHUTDOWN_TIMEOUT": "1"}, routes).start()
    try:
        send(tcp, ("web-1", "first"), ("web-2", "to a drain that is down"))
        sink.wait_lines(1)
        base = f"http://127.0.0.1:{agent.http_port}"
        with urllib.request.urlopen(base + "/") as r:
            html = r.read()
            csp = r.headers["Content-Security-Policy"]
        # one small file, nothing fetched from elsewhere
        assert len(html) < 16 << 10
        assert b"http://" not in html and b"https://" not in html and b" src=" not in html
        assert "default-src 'none'" in csp

        browser.get(base + "/")
        wait_for(lambda: browser.displayed("#login"), 10, what="the token form")
        assert not browser.displayed("#main")
        browser.type("#token", "wrong")
        browser.click("#loginbtn")
        browser.wait_text("#loginerr", "wrong token")
        browser.type("#token", TOKEN)
        browser.click("#loginbtn")
        browser.wait_text("#drains", f"syslog+tcp://127.0.0.1:{sink.port}")
        assert "syslog_tcp" in browser.text("#inputs")
        assert "web-1" in browser.text("#routes") and "web-2" in browser.text("#routes")
        # the failing drain's state shows (failing, then paused after 2 failures)
        browser.wait_text("#drains", "paused", 30)

        # the token is kept in a cookie scripts cannot read, sent to this site only
        cookies = {c["name"]: c for c in browser.cookies()}
        c = cookies["logtrain-session"]
        assert c["httpOnly"] is True and c["sameSite"] == "Strict"
        assert TOKEN not in c["value"]
        assert "logtrain-session" not in browser.script("return document.cookie;")
        # asked once: a new visit goes straight to the page
        browser.get(base + "/")
        browser.wait_text("#drains", "syslog+tcp://")
        assert not browser.displayed("#login")

        # updated live: counters move without a reload
        before = agent.metric("logtrain_input_frames_total")
        send(tcp, *[("web-1", f"more {i}") for i in range(7)])
        wait_for(lambda: agent.metric("logtrain_input_frames_total") == before + 7, 10,
                 what="frames counted")
        browser.wait_text("#inputs", f"{int(before + 7):,}")

        # the live-tail box shows a line sent now; markup in a hostname stays text
        browser.type("#glob", "web-*")
        browser.click("#tailbtn")
        browser.wait_text("#tailstate", "following web-*")
        wait_for(lambda: agent.metric("logtrain_tails") == 1, 5, what="the page's tail")
        stamp = f"live-{time.monotonic_ns()}"
        send(tcp, ("web-1", f"hello from the test {stamp}"), ("other", "not this one"),
             ("web-<b>9</b>", "markup"))
        box = browser.wait_text("#tailbox", stamp)
        assert "web-1 web: hello from the test " + stamp in box
        box = browser.wait_text("#tailbox", "web-<b>9</b> web: markup")
        assert "not this one" not in box
        assert browser.script("return document.querySelectorAll('#tailbox b').length;") == 0
        browser.wait_text("#tails", "web-*")
        # stopping the tail in the page removes it from the agent at once
        browser.click("#tailbtn")
        wait_for(lambda: agent.metric("logtrain_tails") == 0, 3, what="the page's tail removed")

        # everything the page loaded came from the agent itself
        resources = browser.script(
            "return performance.getEntriesByType('resource').map(e => e.name);")
        assert resources and all(u.startswith(base + "/") for u in resources), resources
        source = browser.source()
        assert "pa55word" not in source and "t0ps3cret" not in source
        assert "https://someone:****@127.0.0.1:1/x?token=****" in source  # urls.mask_url
    finally:
        agent.stop()
        sink.close()
