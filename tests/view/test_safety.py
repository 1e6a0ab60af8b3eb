"""`hud view` treats every trace as hostile: nothing in one runs, no path leaves the
runs folder, and only the loopback is answered."""

from __future__ import annotations

import http.client
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.view.conftest import Runs
from tests.view.viewkit import XSS, snap

#: what would be in the page if any of XSS had been parsed as markup
INJECTED = ("main script", "img[src=x]", "iframe", "a[href^='javascript']", "svg[onload]",
            "[onerror]", "[onload]", "[onmouseover]")


def _assert_inert(page: Any) -> None:
    assert page.dialogs == []
    assert page.evaluate("() => window.__pwned") is None
    for selector in INJECTED:
        assert page.locator(selector).count() == 0, selector
    assert page.locator("script").count() == 1  # the viewer's own view.js


@pytest.mark.parametrize("path", ["", "job/{job}", "job/{job}/run/{trace}", "leaderboard",
                                  "compare?job={job}&job={other}"])
def test_a_hostile_trace_runs_nothing(page: Any, served: str, runs: Runs, shots: Path,
                                      path: str) -> None:
    """Model text, tool results, task args, the agent's name and screenshot names holding
    <script>, onerror images and javascript: links show as text: no dialog, no element."""
    page.goto(served + path.format(job=runs.hostile, trace=runs.hostile_trace,
                                   other=runs.oracle))
    page.wait_for_load_state("load")
    _assert_inert(page)
    assert "<script>window.__pwned=1;alert(1)</script>" in page.locator("main").inner_text()
    if "run" in path:
        for text in XSS:  # each appears verbatim, as text, in the run page
            assert text in page.locator("main").inner_text()
        for details in page.locator("details.fold").all():
            details.evaluate("d => d.open = true")  # what opening every fold would do
        _assert_inert(page)
        snap(page, shots, "hostile-run")


def _get(url: str, path: str, host: str | None = None) -> tuple[int, bytes]:
    """A raw GET of `path` as written (no client-side normalisation of ../)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", [
    "/job/../../../../etc/passwd", "/job/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/job/%2e%2e/%2e%2e/etc/passwd", "/job/%2Fetc%2Fpasswd", "/job/.",
    "/job/xss-job/shot/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/job/xss-job/shot/%2Fetc%2Fpasswd",
    "/job/xss-job/shot/job.json", "/job/xss-job/shot/hostile0run1-0002.png",
    "/job/xss-job/run/..%2Fjob", "/job/xss-job/run/hostile0run1/raw/99999",
    "/job/..%2Fxss-job/run/hostile0run1", "/job/xss-job/run/hostile0run1?page=-1",
    "/static/..%2Fstore.py", "/static/view.css%00", "/api/stamp?job=..%2F..%2Fetc",
])
def test_path_traversal_is_404(served: str, path: str) -> None:
    """../, absolute paths, encoded slashes, non-PNG "screenshots" and unknown events are
    404, never a file outside the runs folder."""
    status, body = _get(served, path)
    assert status == 404, (path, body[:200])
    assert b"root:" not in body and b"__pwned" not in body


def test_path_traversal_in_the_browser_is_a_404_page(page: Any, served: str) -> None:
    """The browser's view of a traversal URL: a 404 page, nothing from the file."""
    response = page.goto(served + "job/..%2F..%2F..%2Fetc%2Fpasswd")
    assert response is not None and response.status == 404
    assert "Not found" in page.locator("h1").inner_text()


def test_a_foreign_host_header_is_refused(served: str) -> None:
    """Bound to the loopback, the viewer answers no other Host (DNS rebinding)."""
    assert _get(served, "/", host="attacker.example")[0] == 400
    assert _get(served, "/", host=f"localhost:{urllib.parse.urlsplit(served).port}")[0] == 200


def test_pages_carry_a_content_security_policy(page: Any, served: str) -> None:
    """Every page forbids inline and foreign scripts, framing and MIME sniffing."""
    response = page.goto(served)
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
