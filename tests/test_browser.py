"""The HTML report in a real browser: headless Chromium draws the SVG and the page raises no error.

Needs Debian's ``chromium`` package (``.ci/run`` installs it); skipped, with
the command to install it, where no browser is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from harness.store import failure_file
from harness.cli.main import main

from test_coverage_probe import FIXTURES

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed: apt-get install chromium")

WINDOW = (1200, 900)

#: Runs first in <head>: records every error the page raises, a failed resource load included.
ERRORS = """<script>window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || (e.target && e.target.outerHTML) || e.type)); }, true);
</script>"""

#: Runs last in <body>: measures what the browser drew and writes it into the DOM for --dump-dom.
PROBE = """<script>(function () {
  var svgs = Array.prototype.slice.call(document.querySelectorAll('svg.timeline'));
  var rings = Array.prototype.slice.call(document.querySelectorAll('svg.timeline g.violating circle.ring'));
  var out = {
    svgs: svgs.length,
    boxes: svgs.map(function (s) { var b = s.getBBox(); return [b.width, b.height]; }),
    shown: svgs.map(function (s) { var r = s.getBoundingClientRect(); return [r.width, r.height]; }),
    markers: document.querySelectorAll('svg.timeline g.event').length,
    drawn: Array.prototype.slice.call(document.querySelectorAll('svg.timeline g.event')).filter(function (g) {
      var b = g.getBBox(); return b.width + b.height > 0; }).length,
    rings: rings.length,
    ringStroke: rings.length ? getComputedStyle(rings[0]).stroke : null,
    lanes: document.querySelectorAll('svg.timeline text.lane-label').length,
    external: Array.prototype.slice.call(document.querySelectorAll('[src],[href]')).map(function (e) {
      return e.getAttribute('src') || e.getAttribute('href'); }).filter(function (u) { return u.charAt(0) !== '#'; }),
    errors: window.__errors
  };
  var pre = document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A real report from 'harness fuzz --html' of a target that fails, and the failure file it drew."""
    folder = tmp_path_factory.mktemp("browser")
    sys.path.insert(0, str(FIXTURES))
    sys.modules.pop("covered_pool", None)
    try:
        code = main(
            ["fuzz", "covered_pool:tight", "--seed", "1", "--max-examples", "30", "--no-regressions", "--html",
             "--report-dir", str(folder)]
        )
    finally:
        sys.path.remove(str(FIXTURES))
        sys.modules.pop("covered_pool", None)
    assert code == 1
    (saved,) = (folder / "failures").glob("*.json")
    return folder / "report.html", failure_file.load(saved)


def test_chromium_draws_the_timeline_without_errors(report, tmp_path) -> None:
    page, record = report
    html = page.read_text(encoding="utf-8")
    # The page forbids every script (its Content-Security-Policy); the probe is the test's own
    # instrument, so this copy drops the policy. The next test shows the policy holds on the page.
    policy = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', html)
    assert policy is not None
    probed = tmp_path / "probed.html"
    unguarded = html.replace(policy.group(0), "", 1)
    probed.write_text(unguarded.replace("<head>", "<head>" + ERRORS, 1).replace("</body>", PROBE + "</body>", 1))
    done = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", probed.as_uri(), profile=tmp_path / "profile")
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, f"chromium printed no probe result (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(unescape(found.group(1)))

    assert result["errors"] == []
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line or "Error" in line], console
    assert result["external"] == []

    events = [e for e in record.trace if e.kind != "end"]
    assert result["svgs"] == 1
    (box,), (shown,) = result["boxes"], result["shown"]
    assert box[0] > 300 and box[1] > 100  # the SVG's contents were laid out, not just parsed
    assert shown[0] > 300 and shown[1] > 100
    assert result["markers"] == result["drawn"] == len(events)
    assert result["rings"] == len(record.marked) > 0
    assert result["ringStroke"] == "rgb(212, 0, 0)"
    assert result["lanes"] == 1 + len({e.job for e in events if e.job >= 0})


def test_the_pages_policy_stops_a_script_smuggled_into_it(report, tmp_path) -> None:
    """A script that reached the page (say, through a crafted summary) does not run in a browser."""
    page, _ = report
    html = page.read_text(encoding="utf-8")
    smuggled = tmp_path / "smuggled.html"
    smuggled.write_text(html.replace("</body>", PROBE + "</body>", 1))
    done = chromium("--dump-dom", smuggled.as_uri(), profile=tmp_path / "profile")
    assert "</body>" in done.stdout, f"chromium printed no page (exit {done.returncode}): {done.stderr[-2000:]}"
    assert 'id="probe-result"' not in done.stdout


def test_chromium_screenshots_the_page(report, tmp_path) -> None:
    page, _ = report
    shot = tmp_path / "report.png"
    done = chromium(
        f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars", page.as_uri(),
        profile=tmp_path / "profile",
    )
    assert shot.exists(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == WINDOW
    assert len(data) > 30_000  # a blank page compresses to a few kilobytes
