"""Coverage of the target's own code during a campaign, measured with coverage.py.

A clean campaign means little if its schedules never reached the code under
test. ``CoverageProbe`` measures line and branch coverage of the target's
own package only (``coverage_scope``: the package that holds the target's
module: for ``mypkg.sub.targets:pool`` every file under ``mypkg/sub/``; for
``mypkg.targets:pool`` every file under ``mypkg/``; for a top-level module
``targets:pool``, that one file; or the package or module named by
``--coverage-package``), from before the target is imported to the end of
the campaign, and reports the percentages and the lines and branches never
run, file by file.

Start the probe before the target's module is imported: lines run at import
(``def``, ``class``, module constants) count only if the import is measured.
A module imported earlier is named in the report's ``note``.

The probe reads no coverage configuration file (``# pragma: no cover``
still excludes a line) and writes no data file. Hypothesis traces code only
in its ``explain`` phase, which campaigns leave out, so the two never
compete for the tracer. A probe started while another coverage.py
measurement runs (the user's own ``coverage run``) pauses that one until it
stops.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import coverage

from harness.run.lines import target_source

#: Warnings coverage.py would print that the report states in its own words (or that do not apply).
_QUIET = ["module-not-measured", "module-not-imported", "no-data-collected", "couldnt-parse", "no-ctracer"]


class CoverageProbe:
    """Line and branch coverage of one target's package while a campaign runs.

    Use as a context manager around loading the target and running the
    campaign, then read ``report()``::

        probe = CoverageProbe("mypkg.targets:pool")
        with probe:
            target = load_target("mypkg.targets:pool")
            run_campaign(target, "mypkg.targets:pool", config)
        probe.report()["lines"]["percent"]
    """

    def __init__(self, target_spec: str, scope: str | None = None) -> None:
        self.target_spec = target_spec
        found = coverage_scope(target_spec, scope)
        self.name, self.paths = found if found is not None else ("", [])
        self.preimported: list[str] = []
        self._cov: coverage.Coverage | None = None
        self._report: dict[str, Any] | None = None

    @property
    def package(self) -> bool:
        return any(path.is_dir() for path in self.paths)

    def start(self) -> None:
        if not self.paths or self._cov is not None:
            return
        self.preimported = sorted(
            name for name in sys.modules if name == self.name or name.startswith(self.name + ".")
        )
        if self.package:
            cov = coverage.Coverage(
                branch=True, data_file=None, config_file=False, source_dirs=[str(p) for p in self.paths]
            )
        else:
            cov = coverage.Coverage(branch=True, data_file=None, config_file=False, include=[str(self.paths[0])])
        cov.set_option("run:disable_warnings", _QUIET)
        cov.start()
        self._cov = cov

    def stop(self) -> None:
        if self._cov is not None and self._report is None:
            self._cov.stop()
            self._report = self._summarise(self._cov)

    def __enter__(self) -> CoverageProbe:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def report(self) -> dict[str, Any] | None:
        """The coverage as JSON-ready data (its keys: docs/reference/summary.md), or None if nothing was measured."""
        return self._report

    def _summarise(self, cov: coverage.Coverage) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="harness-coverage-") as folder:
            out = os.path.join(folder, "coverage.json")
            try:
                cov.json_report(outfile=out, ignore_errors=True)
            except coverage.exceptions.NoDataError:
                data: dict[str, Any] = {"files": {}}
            else:
                data = json.loads(Path(out).read_text(encoding="utf-8"))
        # Paths are given from the directory that holds the top-level package (scenarios/review/round3/x.py).
        root = self.paths[0].parents[self.name.count(".")]
        files = []
        for name, info in sorted(data.get("files", {}).items()):
            summary = info["summary"]
            files.append(
                {
                    "file": _relative(name, root),
                    "statements": summary["num_statements"],
                    "covered_lines": summary["covered_lines"],
                    "missing_lines": list(info.get("missing_lines", [])),
                    "branches": summary.get("num_branches", 0),
                    "covered_branches": summary.get("covered_branches", 0),
                    "missing_branches": [list(arc) for arc in info.get("missing_branches", [])],
                    "percent": round(summary["percent_covered"], 1),
                }
            )
        files.sort(key=lambda f: f["file"])
        lines_total = sum(f["statements"] for f in files)
        lines_covered = sum(f["covered_lines"] for f in files)
        branches_total = sum(f["branches"] for f in files)
        branches_covered = sum(f["covered_branches"] for f in files)
        note = None
        if self.preimported:
            note = (
                f"imported before measuring began, so the lines run at import count as not run: "
                f"{', '.join(self.preimported)}"
            )
        return {
            "scope": self.name,
            "kind": "package" if self.package else "module",
            "percent": round(_percent(lines_covered + branches_covered, lines_total + branches_total), 1),
            "lines": {"covered": lines_covered, "total": lines_total, "percent": round(_percent(lines_covered, lines_total), 1)},
            "branches": {
                "covered": branches_covered,
                "total": branches_total,
                "percent": round(_percent(branches_covered, branches_total), 1),
            },
            "files": files,
            "note": note,
        }


def coverage_scope(target_spec: str, scope: str | None = None) -> tuple[str, list[Path]] | None:
    """The dotted name and the directories (a package) or the file (a module) coverage measures.

    ``scope``, a package or module name, when given; else the package that
    holds the target's module (``a.b.targets:t`` gives ``a.b``; a target in a
    package's ``__init__``, ``a.b:t``, that package; a top-level module, that
    file), so that the figure is about the code beside the target rather than
    everything else its top-level package holds. None when it cannot be
    found. Nothing is imported: the name is looked up folder by folder from
    its top-level package (a module the path layout does not show, such as
    one made at import, falls back to that whole top-level package).
    """
    name = scope if scope is not None else target_spec.partition(":")[0]
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    found = target_source(name)
    if found is None:
        return None
    paths, parent = found[1], found[1]
    for part in parts[1:]:
        dirs = [d / part for d in paths if d.is_dir() and (d / part).is_dir()]
        files = [d / f"{part}.py" for d in paths if d.is_dir() and (d / f"{part}.py").is_file()]
        if not dirs and not files:
            return None if scope is not None else found
        parent, paths = paths, dirs or files[:1]
    if scope is None and len(parts) > 1 and not any(p.is_dir() for p in paths):
        return ".".join(parts[:-1]), parent  # a module in a package: measure the package that holds it
    return name, paths


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 100.0


def _relative(name: str, root: Path) -> str:
    path = Path(name)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
