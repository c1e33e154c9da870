"""A failure's trace drawn as an SVG timeline: one lane per job over virtual time.

Pure string building, no scripts and no external resources, so the picture
can be inlined in a self-contained HTML page (or saved on its own).

Layout:

- one lane per job (or periodic handle), in id order, labelled with the
  job's key when the target declares keys, under a ``reactor``
  lane for the events that concern no job (stop, clock jumps, errors that
  escaped into the reactor, unhandled errors, leaks, the drain mark) and,
  when the subject scheduled any, a ``timers`` lane for its own delayed
  calls: set, fired or cancelled, a thin line while each is pending;
- x is virtual time, left to right. Many events share one instant (a job
  fails, the next starts, its Deferred fires, all at 10ms), so each instant
  is widened into a shaded band with one slot per event, in the order they
  happened, and the stretches between instants grow with the logarithm of
  the time that passed: order is always exact, distance only suggestive;
  the axis labels every instant with its time;
- a job's wait for a slot (submit to start) is a thin line, each attempt a
  bar from start to its end, coloured by how it ended (finished, failed,
  cancelled, or still running at the end of the run);
- every event is a marker whose shape and colour say its kind (the legend
  below the lanes lists those present) with the full event as its tooltip;
- ``stop()``, wall-clock jumps and operation calls are vertical rules across all lanes,
  labelled; the events that break the invariant are ringed in red and
  labelled with their kind, and the lanes of the jobs involved are tinted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from harness.model.keys import key_of_submit
from harness.model.trace import NO_JOB, Event, EventKind, format_ms

# Geometry, in pixels.
LEFT = 86
RIGHT = 24
HEADER = 58
LANE = 30
SLOT = 16
AXIS = 44
LEGEND_ROW = 20
MIN_WIDTH = 640
#: A short trace is stretched to at least this many pixels of plot, by at most MAX_STRETCH.
MIN_PLOT = 600
MAX_STRETCH = 3.0
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"

VIOLATION_RED = "#d40000"


@dataclass(frozen=True)
class Marker:
    """How one kind of event is drawn: a shape, its colours, and its legend label."""

    shape: str
    fill: str
    stroke: str
    label: str


#: Marker classes, in legend order.
MARKERS: dict[str, Marker] = {
    "submit": Marker("circle", "#ffffff", "#1f5fbf", "submit"),
    "start": Marker("circle", "#1f5fbf", "#1f5fbf", "periodic start"),
    "job.start": Marker("triangle", "#1f5fbf", "#1f5fbf", "job starts"),
    "job.finish": Marker("square", "#2e8b3a", "#2e8b3a", "job finishes"),
    "job.fail": Marker("cross", "#c62828", "#c62828", "job fails"),
    "job.cancel": Marker("slash", "#e07b00", "#e07b00", "job cancelled"),
    "result": Marker("diamond", "#2e8b3a", "#1b5e20", "Deferred fires: result"),
    "failure": Marker("diamond", "#c62828", "#7f0000", "Deferred fires: failure"),
    "cancelled": Marker("diamond", "#e07b00", "#8a4b00", "Deferred fails: CancelledError"),
    "timeout": Marker("clock", "#ffffff", "#6a1b9a", "timeout"),
    "cancel": Marker("slash", "#ffffff", "#e07b00", "cancel()"),
    "stop": Marker("rule", "#444444", "#444444", "stop()"),
    "jump": Marker("rule", "#6a1b9a", "#6a1b9a", "wall clock jump"),
    "call": Marker("rule", "#00695c", "#00695c", "operation call (flush, trip...)"),
    "error": Marker("star", "#c62828", "#7f0000", "error (raised, escaped, logged, unhandled)"),
    "leak": Marker("square", "#ffffff", "#6a1b9a", "left behind after stop"),
    "skip": Marker("circle", "#ffffff", "#9e9e9e", "skipped (nothing to do)"),
    "drained": Marker("tick", "#9e9e9e", "#9e9e9e", "drained"),
    "timer.set": Marker("circle", "#ffffff", "#00838f", "subject's callLater set"),
    "timer.fire": Marker("circle", "#00838f", "#00838f", "subject's callLater fires"),
    "timer.cancel": Marker("slash", "#ffffff", "#9e9e9e", "subject's callLater cancelled"),
    "other": Marker("circle", "#bdbdbd", "#757575", "other"),
}

#: Trace event kind -> marker class (failures are refined by their error type below).
KIND_CLASS: dict[str, str] = {
    EventKind.SUBMIT: "submit",
    EventKind.START: "start",
    EventKind.JOB_START: "job.start",
    EventKind.JOB_FINISH: "job.finish",
    EventKind.JOB_FAIL: "job.fail",
    EventKind.JOB_CANCEL: "job.cancel",
    EventKind.RESULT: "result",
    EventKind.FAILURE: "failure",
    EventKind.CANCEL: "cancel",
    EventKind.CANCEL_RAISED: "error",
    EventKind.CANCEL_SKIP: "skip",
    EventKind.SUBMIT_RAISED: "error",
    EventKind.STOP: "stop",
    EventKind.STOP_SKIP: "skip",
    EventKind.STOP_RAISED: "error",
    EventKind.STOP_FAILURE: "error",
    EventKind.CLOCK_JUMP: "jump",
    EventKind.CALL: "call",
    EventKind.CALL_RAISED: "error",
    EventKind.CALL_FAILURE: "error",
    EventKind.CALL_REFUSED: "skip",
    EventKind.REACTOR_ERROR: "error",
    EventKind.REACTOR_LIVELOCK: "error",
    EventKind.UNHANDLED: "error",
    EventKind.LOG_ERROR: "error",
    EventKind.USER_FAIL: "error",
    EventKind.LEAK_CALL: "leak",
    EventKind.LEAK_LOOP: "leak",
    EventKind.DRAINED: "drained",
    EventKind.TIMER_SET: "timer.set",
    EventKind.TIMER_FIRE: "timer.fire",
    EventKind.TIMER_CANCEL: "timer.cancel",
    EventKind.TIMER_RESET: "timer.set",
}

#: The lane of the subject's own delayed calls (``timer.*`` events), under the reactor's.
TIMERS = -2

#: Bar colours for an attempt, by the event that ended it (None: still running at the end).
ATTEMPT_FILL: dict[str | None, str] = {
    EventKind.JOB_FINISH: "#a5d6a7",
    EventKind.JOB_FAIL: "#ef9a9a",
    EventKind.JOB_CANCEL: "#ffcc80",
    None: "#cfd8dc",
}
ATTEMPT_LEGEND = (
    (EventKind.JOB_FINISH, "running, then finished"),
    (EventKind.JOB_FAIL, "running, then failed"),
    (EventKind.JOB_CANCEL, "running, then cancelled"),
    (None, "still running at the end"),
)


def marker_class(event: Event) -> str:
    """The marker class of an event; a failure is a timeout or a cancellation when its error says so."""
    cls = KIND_CLASS.get(event.kind, "other")
    if cls == "failure":
        error = event.detail.split(":", 1)[0]
        if error == "TimeoutError":
            return "timeout"
        if error == "CancelledError":
            return "cancelled"
    return cls


def lane_of(event: Event) -> int:
    if event.job >= 0:
        return event.job
    return TIMERS if event.kind.startswith("timer.") else NO_JOB


def timer_id(event: Event) -> str:
    """The number that ties a timer's set, fire and cancel events together (``#3``)."""
    return event.detail.split(" ", 1)[0]


def _gap(dt_us: int) -> float:
    """Pixels between two instants ``dt_us`` apart: grows with the logarithm of the time."""
    # Bounded both ways: a trace read from a file may go backwards in time, or jump by 10**400.
    return 14 + 34 * math.log10(1 + min(max(dt_us, 0), 10**18) / 1000)


@dataclass
class _Placed:
    index: int
    event: Event
    x: float
    y: float
    cls: str


def timeline_svg(
    events: Sequence[Event],
    marked: Iterable[int] = (),
    invariant: str = "",
    title: str = "",
) -> str:
    """The trace as an SVG document fragment (an ``<svg>`` element), violating events ringed."""
    marks = set(marked)
    shown = [(i, e) for i, e in enumerate(events) if e.kind != EventKind.END]
    jobs = sorted({e.job for _, e in shown if e.job >= 0})
    lanes = [NO_JOB] + ([TIMERS] if any(lane_of(e) == TIMERS for _, e in shown) else []) + jobs
    lane_y = {lane: HEADER + LANE * row + LANE / 2 for row, lane in enumerate(lanes)}
    involved = {events[i].job for i in marks if 0 <= i < len(events) and events[i].job >= 0}
    keys = {e.job: key_of_submit(e.detail) for _, e in shown if e.kind == EventKind.SUBMIT}

    # x: one band per instant, one slot per event in it, log-scaled gaps between instants.
    placed: list[_Placed] = []
    bands: list[tuple[float, float, int]] = []  # (x0, x1, t_us)
    x = LEFT + 12.0
    previous_t: int | None = None
    for index, event in shown:
        if event.t_us != previous_t:
            if previous_t is not None:
                x = bands[-1][1] + _gap(event.t_us - previous_t)
            bands.append((x, x, event.t_us))
            previous_t = event.t_us
        x0, x1, t = bands[-1]
        placed.append(_Placed(index, event, x1 + SLOT / 2, lane_y[lane_of(event)], marker_class(event)))
        bands[-1] = (x0, x1 + SLOT, t)
    _stretch(placed, bands, LEFT + 12.0)
    plot_end = (bands[-1][1] if bands else LEFT + 12.0) + 12
    heading = title or _heading(invariant, [events[i] for i in sorted(marks) if 0 <= i < len(events)])
    width = max(MIN_WIDTH, math.ceil(plot_end + RIGHT), math.ceil(LEFT + 7.6 * len(heading) + RIGHT))
    lanes_bottom = HEADER + LANE * len(lanes)
    axis_y = lanes_bottom + 6

    present = _legend_entries(placed)
    legend_rows = _legend_layout(present, width)
    height = math.ceil(axis_y + AXIS + LEGEND_ROW * (len(legend_rows) + 1) + 8)

    out: list[str] = []
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="{FONT};font-size:11px">'
    )
    out.append(f"<title>{escape(heading)}</title>")
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    out.append(f'<text x="{LEFT}" y="20" font-size="13" font-weight="600" fill="#222">{escape(heading)}</text>')
    out.append(
        f'<text x="{LEFT}" y="38" fill="#666">virtual time left to right; events at one instant are spread '
        f"over its shaded band in the order they happened</text>"
    )

    # Lanes: alternating background, tinted when the violation involves the job; labels on the left.
    for row, lane in enumerate(lanes):
        top = HEADER + LANE * row
        fill = "#fdecea" if lane in involved else ("#f7f7f7" if row % 2 else "#ffffff")
        out.append(f'<rect class="lane" x="{LEFT}" y="{top}" width="{plot_end - LEFT:.1f}" height="{LANE}" fill="{fill}"/>')
        label = {NO_JOB: "reactor", TIMERS: "timers"}.get(lane, f"job {lane}")
        if keys.get(lane) is not None:
            label += f" key {keys[lane]}"
        colour = VIOLATION_RED if lane in involved else "#333"
        weight = "700" if lane in involved else "400"
        out.append(
            f'<text class="lane-label" x="{LEFT - 8}" y="{top + LANE / 2 + 4}" text-anchor="end" '
            f'fill="{colour}" font-weight="{weight}">{escape(label)}</text>'
        )
    out.append(f'<line x1="{LEFT}" y1="{HEADER}" x2="{LEFT}" y2="{lanes_bottom}" stroke="#999"/>')

    # Instants: shaded bands and the time axis.
    out.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{plot_end:.1f}" y2="{axis_y}" stroke="#999"/>')
    label_end = -1e9
    for x0, x1, t in bands:
        out.append(
            f'<rect class="instant" x="{x0:.1f}" y="{HEADER}" width="{x1 - x0:.1f}" '
            f'height="{lanes_bottom - HEADER}" fill="#1f5fbf" fill-opacity="0.06"/>'
        )
        out.append(f'<line x1="{x0:.1f}" y1="{axis_y}" x2="{x0:.1f}" y2="{axis_y + 5}" stroke="#999"/>')
        text = format_ms(t)
        if x0 > label_end:
            out.append(f'<text class="tick" x="{x0:.1f}" y="{axis_y + 17}" fill="#444">{escape(text)}</text>')
            label_end = x0 + 6.2 * len(text) + 6

    out.extend(_waits_and_attempts(placed, plot_end))
    out.extend(_pending_timers(placed, plot_end))
    out.extend(_rules(placed, lanes_bottom))
    for item in placed:
        out.append(_marker(item, item.index in marks))
    out.extend(_violation_labels(placed, marks))
    out.extend(_legend(legend_rows, axis_y + AXIS))
    out.append("</svg>")
    return "\n".join(out)


def _stretch(placed: list[_Placed], bands: list[tuple[float, float, int]], origin: float) -> None:
    """Spread a short trace over at least ``MIN_PLOT`` pixels (at most ``MAX_STRETCH`` times wider)."""
    if not bands:
        return
    span = bands[-1][1] - origin
    factor = min(MAX_STRETCH, MIN_PLOT / span) if span > 0 else 1.0
    if factor <= 1.0:
        return
    for item in placed:
        item.x = origin + (item.x - origin) * factor
    bands[:] = [(origin + (x0 - origin) * factor, origin + (x1 - origin) * factor, t) for x0, x1, t in bands]


def _heading(invariant: str, violating: list[Event]) -> str:
    if not invariant:
        return "trace timeline"
    if not violating:
        return invariant
    return f"{invariant} broken at {format_ms(violating[-1].t_us)}: the events that break it are ringed in red"


def _waits_and_attempts(placed: list[_Placed], plot_end: float) -> list[str]:
    """A thin line for each job's wait from submit to its first start (if it did not start at once); a bar per attempt."""
    out: list[str] = []
    submitted: dict[int, _Placed] = {}
    waited: set[int] = set()
    running: dict[tuple[int, int], _Placed] = {}
    bars: list[tuple[_Placed, float, str | None]] = []
    previous: _Placed | None = None  # the event before, the subject's timers aside (one set in submit() is no wait)
    for item in placed:
        event = item.event
        before, previous = previous, (previous if event.kind.startswith("timer.") else item)
        if event.job < 0:
            continue
        if event.kind in (EventKind.SUBMIT, EventKind.START):
            submitted[event.job] = item
        elif event.kind == EventKind.JOB_START:
            running[(event.job, event.attempt)] = item
            if event.job in submitted and event.job not in waited:
                waited.add(event.job)
                if before is not submitted[event.job]:  # else it started at once: no wait
                    out.append(_wait(submitted[event.job], item.x))
        elif event.kind in (EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL):
            began = running.pop((event.job, event.attempt), None)
            if began is not None:
                bars.append((began, item.x, event.kind))
        elif event.kind in (EventKind.RESULT, EventKind.FAILURE) and event.job in submitted and event.job not in waited:
            waited.add(event.job)  # fired (cancelled, rejected) before it ever started
            out.append(_wait(submitted[event.job], item.x))
    for job, item in submitted.items():
        if job not in waited and not any(key[0] == job for key in running) and item.event.kind == EventKind.SUBMIT:
            out.append(_wait(item, plot_end))
    for began in running.values():
        bars.append((began, plot_end, None))
    for began, end_x, how in bars:
        attempt = began.event.attempt
        label = f"job {began.event.job} attempt {attempt}" + ("" if how else " (still running at the end)")
        out.append(
            f'<rect class="attempt" x="{began.x:.1f}" y="{began.y - 6:.1f}" width="{max(end_x - began.x, 2):.1f}" '
            f'height="12" rx="3" fill="{ATTEMPT_FILL[how]}" stroke="#78909c" stroke-width="0.5">'
            f"<title>{escape(label)}</title></rect>"
        )
        if attempt:
            out.append(f'<text x="{began.x + 7:.1f}" y="{began.y - 8:.1f}" fill="#555" font-size="9">#{attempt}</text>')
    return out


def _pending_timers(placed: list[_Placed], plot_end: float) -> list[str]:
    """A thin line in the timers lane from each timer's set to its firing or cancelling (or the end)."""
    out: list[str] = []
    pending: dict[str, _Placed] = {}
    spans: list[tuple[_Placed, float]] = []
    for item in placed:
        kind = item.event.kind
        if kind == EventKind.TIMER_SET:
            pending[timer_id(item.event)] = item
        elif kind in (EventKind.TIMER_FIRE, EventKind.TIMER_CANCEL):
            began = pending.pop(timer_id(item.event), None)
            if began is not None:
                spans.append((began, item.x))
    spans += [(began, plot_end) for began in pending.values()]
    for began, end_x in spans:
        out.append(
            f'<line class="timer-pending" x1="{began.x:.1f}" y1="{began.y:.1f}" x2="{end_x:.1f}" '
            f'y2="{began.y:.1f}" stroke="#00838f" stroke-width="1" stroke-opacity="0.5"/>'
        )
    return out


def _wait(submitted: _Placed, end_x: float) -> str:
    return (
        f'<line class="wait" x1="{submitted.x:.1f}" y1="{submitted.y:.1f}" x2="{end_x:.1f}" y2="{submitted.y:.1f}" '
        f'stroke="#90a4ae" stroke-width="1.5" stroke-dasharray="3 2"/>'
    )


def _rules(placed: list[_Placed], lanes_bottom: float) -> list[str]:
    """Vertical rules across every lane for stop(), wall-clock jumps and operation calls, labelled at the top."""
    out: list[str] = []
    for item in placed:
        if item.cls not in ("stop", "jump", "call"):
            continue
        marker = MARKERS[item.cls]
        dash = ' stroke-dasharray="5 3"' if item.cls != "stop" else ""
        if item.cls == "call":
            text = item.event.detail
        else:
            text = f"jump {item.event.detail}" if item.cls == "jump" else (
                "stop()" if item.event.detail != "teardown" else "stop() at teardown"
            )
        out.append(
            f'<line class="rule rule-{item.cls}" x1="{item.x:.1f}" y1="{HEADER - 4}" x2="{item.x:.1f}" '
            f'y2="{lanes_bottom}" stroke="{marker.stroke}" stroke-width="1.5"{dash}/>'
        )
        out.append(
            f'<text class="rule-label" x="{item.x + 3:.1f}" y="{HEADER - 6}" fill="{marker.stroke}" '
            f'font-size="10">{escape(text)}</text>'
        )
    return out


def _shape(cls: str, x: float, y: float) -> str:
    marker = MARKERS[cls]
    fill, stroke = marker.fill, marker.stroke
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"'
    shape = marker.shape
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" {paint}/>'
    if shape == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" {paint}/>'
    if shape == "triangle":
        return f'<path d="M{x - 4:.1f},{y - 5:.1f} L{x + 5:.1f},{y:.1f} L{x - 4:.1f},{y + 5:.1f} Z" {paint}/>'
    if shape == "diamond":
        return f'<path d="M{x:.1f},{y - 6:.1f} L{x + 5:.1f},{y:.1f} L{x:.1f},{y + 6:.1f} L{x - 5:.1f},{y:.1f} Z" {paint}/>'
    if shape == "cross":
        return (
            f'<path d="M{x - 4.5:.1f},{y - 4.5:.1f} L{x + 4.5:.1f},{y + 4.5:.1f} M{x + 4.5:.1f},{y - 4.5:.1f} '
            f'L{x - 4.5:.1f},{y + 4.5:.1f}" fill="none" stroke="{stroke}" stroke-width="2.5"/>'
        )
    if shape == "slash":
        return (
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
            f'<path d="M{x - 3.5:.1f},{y + 3.5:.1f} L{x + 3.5:.1f},{y - 3.5:.1f}" stroke="{stroke}" stroke-width="1.5"/>'
        )
    if shape == "clock":
        return (
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" {paint}/>'
            f'<path d="M{x:.1f},{y - 3.5:.1f} L{x:.1f},{y:.1f} L{x + 3:.1f},{y:.1f}" fill="none" stroke="{stroke}" '
            f'stroke-width="1.3"/>'
        )
    if shape == "star":
        points = []
        for k in range(10):
            radius = 6 if k % 2 == 0 else 2.6
            angle = math.pi / 2 + k * math.pi / 5
            points.append(f"{x + radius * math.cos(angle):.1f},{y - radius * math.sin(angle):.1f}")
        return f'<polygon points="{" ".join(points)}" {paint}/>'
    if shape == "rule":
        return f'<rect x="{x - 2:.1f}" y="{y - 7:.1f}" width="4" height="14" fill="{fill}"/>'
    if shape == "tick":
        return f'<path d="M{x:.1f},{y - 6:.1f} L{x:.1f},{y + 6:.1f}" stroke="{stroke}" stroke-width="2"/>'
    raise ValueError(f"unknown marker shape {shape!r}")


def _marker(item: _Placed, violating: bool) -> str:
    event = item.event
    job = "" if event.job < 0 else f" job {event.job}" + (f" attempt {event.attempt}" if event.attempt else "")
    tip = f"{format_ms(event.t_us)} {event.kind}{job}" + (f": {event.detail}" if event.detail else "")
    if violating:
        tip += " (breaks the invariant)"
    classes = f"event ev-{item.cls.replace('.', '-')}" + (" violating" if violating else "")
    ring = (
        f'<circle class="ring" cx="{item.x:.1f}" cy="{item.y:.1f}" r="9" fill="none" '
        f'stroke="{VIOLATION_RED}" stroke-width="2.5"/>'
        if violating
        else ""
    )
    return (
        f'<g class="{classes}" data-index="{item.index}" data-kind="{escape(event.kind)}">'
        f"<title>{escape(tip)}</title>{_shape(item.cls, item.x, item.y)}{ring}</g>"
    )


def _violation_labels(placed: list[_Placed], marks: set[int]) -> list[str]:
    """The kind of every violating event, written above it, slanted so that neighbours do not collide."""
    out: list[str] = []
    for item in placed:
        if item.index not in marks:
            continue
        x, y = item.x + 2, item.y - 10
        out.append(
            f'<text class="violation-label" x="{x:.1f}" y="{y:.1f}" fill="{VIOLATION_RED}" font-size="10" '
            f'font-weight="600" transform="rotate(-30 {x:.1f} {y:.1f})">{escape(item.event.kind)}</text>'
        )
    return out


_Entry = tuple[str, str, str]  # (kind of swatch, key, label)


def _legend_entries(placed: list[_Placed]) -> list[_Entry]:
    classes = {item.cls for item in placed}
    entries: list[_Entry] = [("marker", cls, MARKERS[cls].label) for cls in MARKERS if cls in classes]
    ends: set[str | None] = set()
    running: set[tuple[int, int]] = set()
    for item in placed:
        key = (item.event.job, item.event.attempt)
        if item.event.kind == EventKind.JOB_START:
            running.add(key)
        elif item.event.kind in ATTEMPT_FILL and key in running:
            running.discard(key)
            ends.add(item.event.kind)
    if running:
        ends.add(None)
    entries += [("bar", str(how), label) for how, label in ATTEMPT_LEGEND if how in ends]
    if any(item.event.kind == EventKind.SUBMIT for item in placed):
        entries.append(("wait", "", "waiting for a slot"))
    entries.append(("ring", "", "breaks the invariant"))
    return entries


def _legend_layout(entries: list[_Entry], width: int) -> list[list[tuple[_Entry, float]]]:
    rows: list[list[tuple[_Entry, float]]] = [[]]
    x = float(LEFT)
    for entry in entries:
        span = 24 + 6.0 * len(entry[2]) + 16
        if x + span > width - RIGHT and rows[-1]:
            rows.append([])
            x = float(LEFT)
        rows[-1].append((entry, x))
        x += span
    return rows


def _legend(rows: list[list[tuple[_Entry, float]]], top: float) -> list[str]:
    out = ['<g class="legend">', f'<text x="{LEFT - 8}" y="{top + 4}" text-anchor="end" fill="#333">legend</text>']
    for r, row in enumerate(rows):
        y = top + r * LEGEND_ROW
        for (kind, key, label), x in row:
            cx = x + 8
            if kind == "marker":
                swatch = _shape(key, cx, y)
            elif kind == "bar":
                how = None if key == "None" else key
                swatch = f'<rect x="{x:.1f}" y="{y - 5:.1f}" width="18" height="10" rx="3" fill="{ATTEMPT_FILL[how]}" stroke="#78909c" stroke-width="0.5"/>'
            elif kind == "wait":
                swatch = f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 18:.1f}" y2="{y:.1f}" stroke="#90a4ae" stroke-width="1.5" stroke-dasharray="3 2"/>'
            else:
                swatch = f'<circle cx="{cx:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="{VIOLATION_RED}" stroke-width="2.5"/>'
            out.append(f'<g class="legend-item">{swatch}<text x="{x + 24:.1f}" y="{y + 4:.1f}" fill="#333">{escape(label)}</text></g>')
    out.append("</g>")
    return out
