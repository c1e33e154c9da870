"""A misdeclared Target field is refused when the Target is made, in one line naming the field, the
problem and the fix, never by a TypeError from a comparison or a loop deep inside (review 3, finding 9)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness import Menu, Target, TargetError, load_target
from harness.cli.main import main


class Subject:
    def submit(self, job: Any) -> Any:
        return job()


def my_check(run: Any) -> None:
    """A user invariant, given by mistake as itself rather than in a tuple."""


def _build(clock: Any) -> Subject:
    return Subject()


#: Each misdeclaration, and the message it must give (a regular expression matched from the start).
REFUSED = {
    "invariants a function": (dict(invariants=my_check), r"Target invariants must be a tuple of functions taking the run, got a function: write invariants=\(my_check,\)$"),
    "invariants a list": (dict(invariants=[my_check]), r"Target invariants must be a tuple of functions taking the run, got a list$"),
    "interval on submit": (dict(interval_ms=100), r"Target interval_ms is a promise about a periodic subject's calls, .*declare kind='periodic'"),
    "overlap on submit": (dict(overlap=True), r"Target overlap is a promise about a periodic subject's calls"),
    "errors a class": (dict(errors=ValueError), r"Target errors must be a tuple of exception classes, got <class 'ValueError'>: write errors=\(ValueError,\)$"),
    "errors names": (dict(errors=("Boom",)), r"Target errors must be a tuple of exception classes"),
    "rejects a class": (dict(rejects=KeyError), r"Target rejects must be a tuple of exception classes, .*write rejects=\(KeyError,\)$"),
    "retries True": (dict(retries=True), r"Target retries must be a non-negative integer, math.inf \(no bound: .*\) or None, got True$"),
    "backoff strings": (dict(retries=1, backoff_ms=("1", "2")), r"Target backoff_ms must be \(low_ms, high_ms\) with 0 <= low <= high"),
    "backoff a number": (dict(retries=1, backoff_ms=100), r"Target backoff_ms must be .* got 100$"),
    "rate of bools": (dict(rate=(True, 100)), r"Target rate must be \(jobs, per_ms\) with positive integers"),
    "shared a string": (dict(keys=2, shared="yes"), r"Target shared must be True or False, got 'yes'$"),
    "description a number": (dict(description=3), r"Target description must be a string, got an int$"),
    "menu max_ops a string": (dict(menu={"max_ops": "x"}), r"Target menu overrides are invalid: Menu max_ops must be an integer of at least 0, got 'x' \(a str\)$"),
    "menu grain 0": (dict(menu={"grain_ms": 0}), r"Target menu overrides are invalid: Menu grain_ms must be an integer of at least 1, got 0 \(an int\)$"),
    "menu gap a float": (dict(menu={"max_gap_ms": 2.5}), r"Target menu overrides are invalid: Menu max_gap_ms must be an integer"),
    "menu cancels a string": (dict(menu={"cancels": "no"}), r"Target menu overrides are invalid: Menu cancels must be True or False, got 'no' \(a str\)$"),
    "menu job_kinds a string": (dict(menu={"job_kinds": "succeed"}), r"Target menu overrides are invalid: Menu job_kinds must be a non-empty tuple of job kinds"),
    "menu errors a string": (dict(menu={"errors": "Boom"}), r"Target menu overrides are invalid: Menu errors must be a non-empty tuple of exception names"),
    "menu errors undeclared": (dict(menu={"errors": ("Nope",)}), r"Target menu errors 'Nope' are neither built-in errors nor ones the target declares: declare"),
    "menu tie-break unknown": (dict(menu={"tie_breaks": ("random",)}), r"Target menu overrides are invalid: Menu tie_breaks must be a non-empty tuple of tie-breaks among fifo"),
    "menu steps a number": (dict(menu={"steps_ms": 10}), r"Target menu overrides are invalid: Menu steps_ms must be a non-empty tuple of non-negative integers"),
    "menu jitter negative": (dict(menu={"jitters_ms": (-5,)}), r"Target menu overrides are invalid: Menu jitters_ms"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_misdeclared_field_is_one_line_naming_it(case: str) -> None:
    fields, message = REFUSED[case]
    with pytest.raises(TargetError) as caught:
        Target(build=_build, **fields)
    text = str(caught.value)
    assert re.match(message, text), text
    assert "\n" not in text


def test_the_same_declarations_done_right_are_accepted() -> None:
    Target(build=_build, invariants=(my_check,), errors=(ValueError,), rejects=(KeyError,), retries=1, backoff_ms=(10, 20.5),
           menu={"max_ops": 4, "grain_ms": 5, "cancels": False, "errors": ("ValueError",), "tie_breaks": ("lifo",)})
    Target(build=lambda clock, work: Subject(), kind="periodic", interval_ms=100, overlap=True)


def test_a_menu_made_directly_names_its_wrong_field() -> None:
    with pytest.raises(ValueError, match=r"^Menu max_then must be an integer of at least 0, got '3' \(a str\)$"):
        Menu(max_then="3")  # type: ignore[arg-type]


def test_loading_a_module_whose_target_is_misdeclared_is_one_line_at_exit_2(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "badinv_fix3b.py").write_text(
        "from harness import Target\n"
        "class S:\n    def submit(self, job):\n        return job()\n"
        "def my_check(run):\n    pass\n"
        "t = Target(build=lambda clock: S(), invariants=my_check)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["fuzz", "badinv_fix3b:t", "--max-examples", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "got a function: write invariants=(my_check,)" in err and "not iterable" not in err


def test_a_spec_naming_something_else_says_an_int_not_a_int(tmp_path, monkeypatch) -> None:
    (tmp_path / "consts_fix3b.py").write_text("HEDGE_MS = 100\nNAME = 'x'\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetError, match=r"^'consts_fix3b:HEDGE_MS' is an int, not a harness.Target;"):
        load_target("consts_fix3b:HEDGE_MS")
    with pytest.raises(TargetError, match=r"^'consts_fix3b:NAME' is a str, not a harness.Target;"):
        load_target("consts_fix3b:NAME")
