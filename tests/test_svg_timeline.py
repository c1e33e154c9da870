"""The SVG timeline of a known failure: lanes, markers, attempt bars, rules, the violation, escaping."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from harness import Target, check, run_schedule
from harness.output.report.svg import MARKERS, marker_class, timeline_svg
from harness.model.schedule import JobSpec, Jump, Schedule, Stop, Submit
from harness.model.trace import Event
from scenarios.pools import SemaphorePool, double_release_pool

NS = {"svg": "http://www.w3.org/2000/svg"}

#: The minimal schedule that breaks the double-release pool: job 1 fails, its slot is released twice,
#: and jobs 2 and 3 both start beside job 0.
KNOWN = Schedule(
    (
        Submit(0, 0, JobSpec("succeed", 20)),
        Submit(0, 1, JobSpec("fail", 10)),
        Submit(0, 2, JobSpec("succeed", 0)),
        Submit(0, 3, JobSpec("succeed", 0)),
    )
)


@pytest.fixture(scope="module")
def known():
    run = run_schedule(double_release_pool, KNOWN)
    (violation,) = [v for v in check(run) if v.invariant == "concurrency.limit"]
    events = tuple(run.trace)
    root = ET.fromstring(timeline_svg(events, violation.events, violation.invariant))
    return events, violation, root


def _by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{NS['svg']}}}{tag}") if cls in (e.get("class") or "").split()]


def test_one_lane_per_job_under_the_reactor_lane(known) -> None:
    _, violation, root = known
    labels = [e.text for e in _by_class(root, "text", "lane-label")]
    assert labels == ["reactor", "job 0", "job 1", "job 2", "job 3"]
    assert len(_by_class(root, "rect", "lane")) == 5
    red = {e.text for e in _by_class(root, "text", "lane-label") if e.get("font-weight") == "700"}
    assert red == {f"job {job}" for job in violation.jobs}


def test_every_event_is_a_marker_in_trace_order(known) -> None:
    events, _, root = known
    markers = _by_class(root, "g", "event")
    shown = [(i, e) for i, e in enumerate(events) if e.kind != "end"]
    assert [int(m.get("data-index")) for m in markers] == [i for i, _ in shown]
    assert [m.get("data-kind") for m in markers] == [e.kind for _, e in shown]
    for marker in markers:
        assert marker.find("svg:title", NS).text  # the full event on hover
        assert len(list(marker)) >= 2  # and a drawn shape


def test_markers_for_submit_start_finish_fail_and_results(known) -> None:
    _, _, root = known
    for cls in ("ev-submit", "ev-job-start", "ev-job-finish", "ev-job-fail", "ev-result", "ev-failure", "ev-drained"):
        assert _by_class(root, "g", cls), cls
    legend = [t.text for t in root.iter(f"{{{NS['svg']}}}text") if t.text and t.text in {m.label for m in MARKERS.values()}]
    assert {"submit", "job starts", "job finishes", "job fails", "Deferred fires: result"} <= set(legend)


def test_one_bar_per_attempt_and_a_wait_line_for_the_queued_jobs(known) -> None:
    events, _, root = known
    starts = sum(1 for e in events if e.kind == "job.start")
    assert len(_by_class(root, "rect", "attempt")) == starts == 4
    fills = {bar.get("fill") for bar in _by_class(root, "rect", "attempt")}
    assert len(fills) == 2  # finished (green) and failed (red)
    assert len(_by_class(root, "line", "wait")) == 2  # jobs 2 and 3 waited; 0 and 1 started at once


def test_the_violating_events_are_ringed_and_labelled(known) -> None:
    _, violation, root = known
    violating = _by_class(root, "g", "violating")
    assert sorted(int(g.get("data-index")) for g in violating) == list(violation.events)
    for g in violating:
        assert _by_class(g, "circle", "ring")
        assert "breaks the invariant" in g.find("svg:title", NS).text
    labels = _by_class(root, "text", "violation-label")
    assert [t.text for t in labels] == ["job.start"] * len(violation.events)
    title = root.find("svg:title", NS).text
    assert title.startswith("concurrency.limit broken at 10ms")


def test_instants_are_bands_and_the_axis_labels_their_times(known) -> None:
    events, _, root = known
    instants = sorted({e.t_us for e in events if e.kind != "end"})
    assert len(_by_class(root, "rect", "instant")) == len(instants)
    assert [t.text for t in _by_class(root, "text", "tick")] == ["0ms", "10ms", "20ms"]
    bands = [float(r.get("x")) for r in _by_class(root, "rect", "instant")]
    assert bands == sorted(bands)
    last = _by_class(root, "rect", "instant")[-1]
    assert float(last.get("x")) + float(last.get("width")) - bands[0] >= 590  # a short trace is spread out


def test_stop_and_clock_jumps_are_rules_across_the_lanes() -> None:
    stoppable = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, stop=lambda subject: None)
    schedule = Schedule((Submit(0, 0, JobSpec("hang")), Jump(10, 500), Jump(20, -250), Stop(30)))
    events = tuple(run_schedule(stoppable, schedule).trace)
    root = ET.fromstring(timeline_svg(events))
    assert len(_by_class(root, "line", "rule-jump")) == 2 and len(_by_class(root, "line", "rule-stop")) == 1
    labels = [t.text for t in _by_class(root, "text", "rule-label")]
    assert labels == ["jump +500ms", "jump -250ms", "stop()"]
    assert root.find("svg:title", NS).text == "trace timeline"
    # Nothing ever ends the hanging job: its bar runs to the end of the plot, marked as still running.
    (bar,) = _by_class(root, "rect", "attempt")
    assert "still running at the end" in bar.find("svg:title", NS).text


@pytest.mark.parametrize(
    ("kind", "detail", "expected"),
    [
        ("failure", "TimeoutError: deferred timed out", "timeout"),
        ("failure", "CancelledError: ", "cancelled"),
        ("failure", "ValueError: boom", "failure"),
        ("cancel", "", "cancel"),
        ("unhandled", "KeyError: 1", "error"),
        ("leak.call", "x due at 5ms", "leak"),
        ("something.new", "", "other"),
    ],
)
def test_marker_classes(kind, detail, expected) -> None:
    assert marker_class(Event(0, kind, 1, 0, detail)) == expected


def test_text_from_the_run_is_escaped() -> None:
    nasty = '<script>alert("x")</script> & </svg>'
    events = (Event(0, "submit", 0, 0, "p0"), Event(1000, "failure", 0, 0, nasty), Event(1000, "end"))
    text = timeline_svg(events, (1,), 'user.<b>"quoted"</b>')
    assert "<script>" not in text and "<b>" not in text
    root = ET.fromstring(text)  # still well-formed
    tips = [g.find("svg:title", NS).text for g in _by_class(root, "g", "event")]
    assert any(nasty in tip for tip in tips)


def test_an_empty_trace_still_draws() -> None:
    root = ET.fromstring(timeline_svg((Event(0, "end"),)))
    assert [e.text for e in _by_class(root, "text", "lane-label")] == ["reactor"]
    assert int(root.get("width")) >= 640
