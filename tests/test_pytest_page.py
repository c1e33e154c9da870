"""The plain-code campaign example of docs/pytest.md runs and checks what it says (review 3, finding 10)."""

from __future__ import annotations

from pathlib import Path

from md_pages import fences

PAGE = Path(__file__).resolve().parents[1] / "docs" / "pytest.md"


def test_the_run_campaign_example_runs_and_passes(tmp_path, capsys) -> None:
    (code,) = [body for info, body in fences(PAGE.read_text()) if info == "python" and "run_campaign(" in body]
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/pytest.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
    assert len(tests) == 1
    tests[0](tmp_path)
    saved = capsys.readouterr().out.strip().removeprefix("harness replay ")
    assert Path(saved).parent == tmp_path / "failures" and Path(saved).is_file()
