"""The HTML report: one self-contained page for a campaign and its failures.

Everything is inline (CSS, SVG); the page loads nothing and runs no script,
so it can be attached to a CI run, mailed, or opened from disk. Every piece
of text that came from a run (messages, trace details, paths) is escaped.

The page is built from two plain inputs, so that ``harness fuzz --html``
and ``harness report FILE...`` draw the same thing:

- the campaign summary, the dictionary ``--json`` writes (``None`` when only
  failure files are given);
- the failures, each a ``FailureView`` made from a campaign's finding or read
  from a failure file.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from harness.store import failure_file
from harness.errors import FailureFileError
from harness.store.failure_file import FailureRecord, versions
from harness.store.files import read_bounded, write_atomic
from harness.invariants import INVARIANTS
from harness.model.schedule import Schedule
from harness.output.summary import FORMAT as SUMMARY_FORMAT
from harness.output.summary import CampaignOutcome
from harness.output.summary import check as check_summary
from harness.output.summary import parse_json
from harness.output.timeline import render_schedule, render_trace
from harness.model.trace import Event
from harness.search.exercised import describe_fault, exercise_of
from harness.output.report.svg import timeline_svg

#: The page loads nothing and runs no script, whatever a summary or failure file holds: only inline
#: styles and SVG are allowed, so even markup that slipped past the escaping could not run.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

#: Events a failure's timeline and text trace draw at most; a window around the violation, the rest counted.
MAX_DRAWN = 2_000

#: Where ``harness fuzz --html`` and ``harness report`` write the page, under the report directory.
REPORT_NAME = "report.html"


@dataclass(frozen=True)
class FailureView:
    """One failure as the report draws it."""

    invariant: str
    message: str
    target: str
    events: tuple[Event, ...]
    marked: tuple[int, ...]
    schedule: Schedule
    file: str | None = None
    source: str = "fuzz"
    shrunk: bool = True
    seed: int | None = None
    #: Time to first failure: search examples and seconds before it was first seen (None: not known).
    detected: tuple[int, float] | None = None

    @property
    def replay(self) -> str | None:
        return f"harness replay {shlex.quote(self.file)}" if self.file is not None else None

    @property
    def anchor(self) -> str:
        return "failure-" + "".join(c if c.isalnum() else "-" for c in (self.file or self.invariant))


def view_of_finding(finding: Any) -> FailureView:
    """A campaign ``Finding`` as the report draws it (the run's own trace, the violation's events)."""
    record: FailureRecord = finding.record
    return FailureView(
        invariant=finding.violation.invariant,
        message=finding.violation.message,
        target=record.target,
        events=tuple(finding.run.trace),
        marked=tuple(finding.violation.events),
        schedule=record.schedule,
        file=str(finding.path) if finding.path is not None else None,
        source=finding.source,
        shrunk=finding.shrunk,
        seed=record.seed,
        detected=_detected(finding.examples_to_detect, finding.detected_after_s),
    )


def _detected(examples: Any, seconds: Any) -> tuple[int, float] | None:
    """Time to first failure as the report shows it, or None when unknown or malformed."""
    if isinstance(examples, int) and not isinstance(examples, bool) and isinstance(seconds, (int, float)):
        if examples >= 0 and 0 <= seconds < float("inf"):
            return examples, float(seconds)
    return None


def view_of_record(
    record: FailureRecord,
    path: str | None,
    source: str = "fuzz",
    shrunk: bool = True,
    detected: tuple[int, float] | None = None,
) -> FailureView:
    """A failure file as the report draws it (its saved trace and marked events)."""
    return FailureView(
        invariant=record.invariant,
        message=record.message,
        target=record.target,
        events=record.trace,
        marked=record.marked,
        schedule=record.schedule,
        file=path,
        source=source,
        shrunk=shrunk,
        seed=record.seed,
        detected=detected,
    )


def load_inputs(paths: Sequence[str]) -> tuple[dict[str, Any] | None, list[FailureView], list[str]]:
    """Read the files ``harness report`` is given: at most one JSON summary, and failure files.

    A summary brings the failures it lists (their files are read when they
    exist). Returns the summary, the failures (each file once, in order) and
    notes on listed failure files that could not be read.
    """
    summary: dict[str, Any] | None = None
    summary_path: Path | None = None
    views: list[FailureView] = []
    seen: set[Path] = set()
    notes: list[str] = []
    records: list[tuple[str, FailureRecord]] = []
    for name in paths:
        data = _read_json(name)
        if isinstance(data, dict) and data.get("format") == SUMMARY_FORMAT:
            if summary is not None:
                raise FailureFileError(f"{name}: only one campaign summary per report (already have {summary_path})")
            summary, summary_path = check_summary(data, name), Path(name)
        else:
            try:
                records.append((name, FailureRecord.from_json(data, source=f"failure file {name!r}")))
            except RecursionError:
                raise FailureFileError(f"{name!r} nests its data too deeply to be a failure file") from None
    if summary is not None:
        for failure in summary.get("failures", []):
            listed = failure.get("file")
            if listed is None:
                continue
            path = _locate(listed, summary_path)
            if path is None:
                notes.append(f"{listed}: the failure file listed by the summary was not found; its timeline is missing")
                continue
            try:
                record = failure_file.load(path)
            except FailureFileError as exc:
                notes.append(str(exc))
                continue
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found = failure.get("detected")
                when = _detected(found.get("examples"), found.get("search_seconds")) if isinstance(found, dict) else None
                views.append(view_of_record(record, listed, failure.get("source", "fuzz"), failure.get("shrunk", True), when))
    for name, record in records:
        if Path(name).resolve() not in seen:
            seen.add(Path(name).resolve())
            views.append(view_of_record(record, name))
    return summary, views, notes


def _read_json(name: str) -> Any:
    text = read_bounded(name, failure_file.MAX_BYTES, "input", FailureFileError)
    return parse_json(text, name, FailureFileError)


def _locate(listed: str, summary_path: Path | None) -> Path | None:
    """A failure file named in a summary: as written (from the current directory), or beside the summary."""
    candidates = [Path(listed)]
    if summary_path is not None:
        candidates += [summary_path.parent / listed, summary_path.parent / "failures" / Path(listed).name]
    for path in candidates:
        try:
            if path.is_file():
                return path
        except (OSError, ValueError):  # a NUL in the name, a name too long
            continue
    return None


# ---------------------------------------------------------------------------------------------- rendering

CSS = """
:root { --fg:#1d1d1f; --muted:#5f6368; --line:#dadce0; --bg:#ffffff; --soft:#f6f8fa;
        --red:#c62828; --green:#2e7d32; --amber:#b26a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 6px; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
      overflow-x: auto; margin: 8px 0; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-weight: 600; font-size: 12.5px;
         color: #fff; vertical-align: middle; }
.badge.failed, .badge.broken, .badge.error { background: var(--red); }
.badge.clean, .badge.held { background: var(--green); }
.badge.interrupted, .badge.unexercised { background: var(--amber); }
table { border-collapse: collapse; margin: 6px 0 4px; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12.5px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; padding-right: 16px; }
tr.zero td { color: var(--amber); }
table.kv th { width: 160px; }
.bar { display: inline-block; width: 120px; height: 9px; background: #eceff1; border-radius: 4px;
       overflow: hidden; vertical-align: middle; }
.bar > span { display: block; height: 100%; background: #5c8fd6; }
.bar.cov > span { background: var(--green); }
.failure { border: 1px solid var(--line); border-left: 4px solid var(--red); border-radius: 6px;
           padding: 14px 16px; margin: 14px 0 22px; }
.failure-body { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.figure { flex: 1 1 640px; min-width: 0; overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
.figure svg { display: block; }
aside.facts { flex: 0 1 360px; min-width: 260px; }
aside.facts .message { font-weight: 600; color: var(--red); margin: 0 0 10px; }
aside.facts dt { color: var(--muted); font-size: 12.5px; margin-top: 8px; }
aside.facts dd { margin: 2px 0 0; overflow-wrap: anywhere; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--muted); }
.missing { overflow-wrap: anywhere; }
.note { background: #fff8e1; border: 1px solid #ffe0a3; border-radius: 6px; padding: 8px 12px; margin: 8px 0; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
"""


def render_report(summary: dict[str, Any] | None, failures: Sequence[FailureView], notes: Iterable[str] = ()) -> str:
    """The whole page as a string."""
    target = (summary or {}).get("target") or (failures[0].target if failures else "")
    outcome = _outcome(summary, failures)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>harness report: {escape(target)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        '<header id="top">',
        f'<h1>harness report <span class="badge {outcome}">{escape(outcome)}</span></h1>',
        f'<div class="muted">target <code>{escape(target)}</code></div>',
        "</header>",
    ]
    parts += [f'<div class="note">{escape(note)}</div>' for note in notes]
    parts += _campaign(summary)
    parts += _failures(failures, stopped_by_error=bool((summary or {}).get("error")))
    if summary is not None:
        parts += _invariants(summary, failures)
        parts += _faults(summary)
        parts += _coverage(summary)
    parts.append(
        f'<footer>Written by harness {escape(versions()["harness"])}. Replay a failure with the command beside its '
        "timeline; <code>harness show FILE</code> prints it as text.</footer>"
    )
    parts += ["</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def write_report(
    path: str | Path, summary: dict[str, Any] | None, failures: Sequence[FailureView], notes: Iterable[str] = ()
) -> Path:
    """Write the page (atomically) and return its path."""
    return write_atomic(path, render_report(summary, failures, notes))


def _outcome(summary: dict[str, Any] | None, failures: Sequence[FailureView]) -> str:
    shown = (CampaignOutcome.CLEAN, CampaignOutcome.FAILED, CampaignOutcome.ERROR, CampaignOutcome.INTERRUPTED)
    if summary is not None and summary.get("outcome") in shown:
        return str(summary["outcome"])
    return CampaignOutcome.FAILED if failures else CampaignOutcome.CLEAN


def _campaign(summary: dict[str, Any] | None) -> list[str]:
    out = ['<section id="campaign">', "<h2>Campaign</h2>"]
    if summary is None:
        out.append(
            '<p class="muted">No campaign summary was given, only failure files: pass the file '
            "<code>harness fuzz --json FILE</code> wrote to see the campaign, what it exercised and its coverage.</p>"
        )
        out.append("</section>")
        return out
    rows = [
        ("target", f"<code>{escape(str(summary.get('target', '')))}</code>"),
        ("seed", f"<code>{escape(str(summary.get('seed')))}</code> (rerun with <code>--seed {escape(str(summary.get('seed')))}</code>)"),
        ("outcome", escape(str(summary.get("outcome", "")))),
        ("examples", _num(summary.get("examples"))),
        ("examples/s", _num(summary.get("examples_per_second"))),
        ("elapsed", f"{_num(summary.get('elapsed_seconds'))} s"),
        ("stopped by", escape(str(summary.get("stopped_by", "")))),
        ("shrink runs", _num(summary.get("shrink_runs"))),
    ]
    if summary.get("error"):
        # A nondeterministic target's error ends with the command that replays the schedule that showed it.
        rows.append(("error", f"<code>{escape(str(summary['error']))}</code>"))
    regressions = summary.get("regressions") or {}
    if regressions.get("directory"):
        rows.append(
            (
                "regressions",
                f"{_num(regressions.get('replayed'))} replayed from <code>{escape(regressions['directory'])}</code>: "
                f"{_num(regressions.get('failing'))} still fail, {_num(regressions.get('fixed'))} fixed",
            )
        )
    invariants = (summary.get("exercised") or {}).get("invariants") or {}
    if invariants:
        exercised = sum(1 for count in invariants.values() if count)
        rows.append(("invariants", f"{len(invariants)} checked, {exercised} exercised (<a href=\"#invariants\">below</a>)"))
    coverage = summary.get("coverage")
    if coverage:
        rows.append(
            (
                "coverage",
                f"{_pct(coverage['lines']['percent'])}% of lines, {_pct(coverage['branches']['percent'])}% of branches of "
                f"<code>{escape(coverage['scope'])}</code> (<a href=\"#coverage\">below</a>)",
            )
        )
    out.append('<table class="kv">')
    out += [f"<tr><th>{escape(name)}</th><td>{value}</td></tr>" for name, value in rows]
    out.append("</table>")
    out.append("</section>")
    return out


def _failures(failures: Sequence[FailureView], stopped_by_error: bool = False) -> list[str]:
    out = ['<section id="failures">', f"<h2>Failures ({len(failures)})</h2>"]
    if not failures:
        before = " before the error that stopped the campaign (above)" if stopped_by_error else ""
        out.append(f'<p class="muted">No invariant was violated{before}.</p>')
    for view in failures:
        out += _failure(view)
    out.append("</section>")
    return out


def window(events: Sequence[Event], marked: Sequence[int], limit: int = MAX_DRAWN) -> tuple[tuple[Event, ...], tuple[int, ...], str]:
    """At most ``limit`` events around the violation, the marked indices shifted to them, and what was left out."""
    if len(events) <= limit:
        return tuple(events), tuple(marked), ""
    last = max(marked, default=len(events) - 1)
    start = min(max(0, last + limit // 10 - limit), len(events) - limit)
    kept = tuple(events[start : start + limit])
    shifted = tuple(i - start for i in marked if start <= i < start + limit)
    note = (
        f"the trace has {len(events):,} events; this page draws {limit:,} of them (events {start + 1:,} to "
        f"{start + limit:,}, ending near the violation): run harness show FILE for all of them"
    )
    return kept, shifted, note


def _failure(view: FailureView) -> list[str]:
    events, marked, left_out = window(view.events, view.marked)
    svg = timeline_svg(events, marked, view.invariant)
    facts = [
        '<aside class="facts">',
        f'<p class="message">{escape(view.message)}</p>',
        "<dl>",
    ]
    if view.replay is not None:
        facts += ["<dt>replay</dt>", f'<dd><code class="replay">{escape(view.replay)}</code></dd>']
        facts += ["<dt>failure file</dt>", f"<dd><code>{escape(view.file or '')}</code></dd>"]
    how = "a regression file that fails again" if view.source == "regression" else "found by this campaign"
    facts += ["<dt>source</dt>", f"<dd>{escape(how)}</dd>"]
    if view.detected is not None:
        examples, seconds = view.detected
        facts += ["<dt>found after</dt>", f"<dd>{examples} examples, {seconds:.2f} s of search (shrinking excluded)</dd>"]
    if not view.shrunk:
        facts += ["<dt>shrinking</dt>", "<dd>cut short: this schedule fails but may not be minimal</dd>"]
    facts += ["<dt>schedule</dt>", f"<dd>{len(view.schedule.ops)} operations</dd>"]
    if view.seed is not None:
        facts += ["<dt>seed</dt>", f"<dd><code>{escape(str(view.seed))}</code></dd>"]
    facts += ["</dl>", "</aside>"]
    if left_out:
        facts.append(f'<div class="note">{escape(left_out)}</div>')
    return [
        f'<article class="failure" id="{escape(view.anchor)}" data-invariant="{escape(view.invariant)}">',
        f"<h3>{escape(view.invariant)}</h3>",
        '<div class="failure-body">',
        f'<div class="figure">{svg}</div>',
        *facts,
        "</div>",
        "<details><summary>schedule and trace as text</summary>",
        f"<pre>{escape(render_schedule(view.schedule))}</pre>",
        f"<pre>{escape(render_trace(events, marked))}</pre>",
        "</details>",
        "</article>",
    ]


def _invariants(summary: dict[str, Any], failures: Sequence[FailureView]) -> list[str]:
    exercised = summary.get("exercised")
    out = ['<section id="invariants">', "<h2>Invariants checked</h2>"]
    if not exercised:
        out += ['<p class="muted">This summary does not say what the campaign exercised.</p>', "</section>"]
        return out
    examples = exercised.get("examples", 0)
    out.append(
        f'<p class="muted">Of the {_num(examples)} examples, how many gave each invariant something to judge; '
        "an invariant never exercised held only because nothing tested it.</p>"
    )
    summaries = {inv.name: inv.summary for inv in INVARIANTS}
    broken = {view.invariant for view in failures} | {f["invariant"] for f in summary.get("failures", [])}
    out.append('<table class="invariants">')
    out.append(
        '<tr><th>invariant</th><th>checks</th><th>exercised when</th><th class="num">examples</th><th></th>'
        "<th>status</th></tr>"
    )
    for name, count in exercised.get("invariants", {}).items():
        family_broken = name in broken or (name == "user" and any(b.startswith("user.") for b in broken))
        status = "broken" if family_broken else ("held" if count else "unexercised")
        label = {"broken": "broken", "held": "held", "unexercised": "never exercised"}[status]
        zero = ' class="zero"' if not count else ""
        out.append(
            f'<tr{zero} data-invariant="{escape(name)}"><td><code>{escape(name)}</code></td>'
            f"<td>{escape(summaries.get(name, 'your own invariant'))}</td>"
            f"<td>{escape(exercise_of(name).when)}</td>"
            f'<td class="num">{_num(count)}</td><td>{_bar(count, examples)}</td>'
            f'<td><span class="badge {status}">{label}</span></td></tr>'
        )
    out += ["</table>", "</section>"]
    return out


def _faults(summary: dict[str, Any]) -> list[str]:
    exercised = summary.get("exercised")
    if not exercised:
        return []
    examples = exercised.get("examples", 0)
    out = [
        '<section id="faults">',
        "<h2>Faults injected</h2>",
        '<p class="muted">How many examples contained each fault the schedules could hold.</p>',
        '<table class="faults">',
        '<tr><th>fault</th><th>what</th><th class="num">examples</th><th></th></tr>',
    ]
    for key, count in exercised.get("faults", {}).items():
        zero = ' class="zero"' if not count else ""
        out.append(
            f'<tr{zero} data-fault="{escape(key)}"><td><code>{escape(key)}</code></td><td>{escape(describe_fault(key))}</td>'
            f'<td class="num">{_num(count)}</td><td>{_bar(count, examples)}</td></tr>'
        )
    out += ["</table>", "</section>"]
    return out


def _coverage(summary: dict[str, Any]) -> list[str]:
    out = ['<section id="coverage">', "<h2>Coverage of the target's code</h2>"]
    coverage = summary.get("coverage")
    if not coverage:
        out += [
            '<p class="muted">Not measured: run <code>harness fuzz --coverage</code> (on by default with '
            "<code>--html</code>).</p>",
            "</section>",
        ]
        return out
    lines, branches = coverage["lines"], coverage["branches"]
    out.append(
        f'<p><strong>{_pct(lines["percent"])}%</strong> of lines ({_num(lines["covered"])} of {_num(lines["total"])}) and '
        f'<strong>{_pct(branches["percent"])}%</strong> of branches ({_num(branches["covered"])} of {_num(branches["total"])}) '
        f'of {escape(coverage["kind"])} <code>{escape(coverage["scope"])}</code> ran during the campaign.</p>'
    )
    if coverage.get("note"):
        out.append(f'<div class="note">{escape(coverage["note"])}</div>')
    out += [
        '<table class="coverage">',
        '<tr><th>file</th><th class="num">lines</th><th class="num">branches</th><th class="num">cover</th><th></th>'
        "<th>lines not run</th><th>branches not taken</th></tr>",
    ]
    for item in coverage["files"]:
        out.append(
            f'<tr data-file="{escape(item["file"])}"><td><code>{escape(item["file"])}</code></td>'
            f'<td class="num">{_num(item["covered_lines"])}/{_num(item["statements"])}</td>'
            f'<td class="num">{_num(item["covered_branches"])}/{_num(item["branches"])}</td>'
            f'<td class="num">{_pct(item["percent"])}%</td>'
            f'<td><span class="bar cov"><span style="width:{_width(item["percent"])}%"></span></span></td>'
            f'<td class="missing">{escape(line_ranges(item["missing_lines"])) or "none"}</td>'
            f'<td class="missing">{escape(branch_list(item["missing_branches"])) or "none"}</td></tr>'
        )
    out += ["</table>", "</section>"]
    return out


def line_ranges(lines: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    ranges: list[list[int]] = []
    for line in sorted(lines):
        if ranges and line == ranges[-1][1] + 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def branch_list(arcs: Iterable[Sequence[int]]) -> str:
    """Branches not taken, ``from->to`` (``to`` is ``exit`` when the branch leaves the function)."""
    return ", ".join(f"{a}->{b if b > 0 else 'exit'}" for a, b in arcs)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:,.1f}" if value % 1 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def _finite(value: Any) -> bool:
    """Whether ``value`` is a number to draw: an int of any size (``math.isfinite`` would overflow on
    a 400-digit one) or a finite float; never a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _pct(value: Any) -> str:
    """A percentage as text: only a finite number is drawn, anything else is ``-``."""
    if not _finite(value):
        return "-"
    return escape(str(value))


def _width(value: Any) -> str:
    """A CSS width in percent, 0 to 100: the only thing that reaches a ``style`` attribute."""
    number = min(max(value, 0), 100) if _finite(value) else 0
    return f"{float(number):.1f}"


def _bar(count: Any, total: Any) -> str:
    valid = _finite(count) and _finite(total)
    try:
        share = 100.0 * count / total if valid and total else 0.0
    except (OverflowError, ZeroDivisionError):
        share = 0.0
    return f'<span class="bar" title="{_width(share)[:-2]}%"><span style="width:{_width(share)}%"></span></span>'
