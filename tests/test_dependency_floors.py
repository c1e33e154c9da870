"""The oldest versions CI tests are the oldest pyproject.toml allows, and CI tests them.

``.ci/run`` runs the tests with every dependency upgraded and the fast tests of
the files ``.ci/oldest-tests.txt`` lists a second time with every dependency pinned
to its floor (``.ci/oldest.txt``); a floor raised in one file and not the other
would test a range nobody allows, and a test file that uses a dependency directly
left off the list would never meet the floor.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
OLDEST = ROOT / ".ci" / "oldest.txt"
CI = ROOT / ".ci" / "run"

#: The extras the oldest run installs, and so pins (``docs`` only builds the site, in the newest run).
PINNED_EXTRAS = ("test", "thirdparty")

_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)$")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _floors() -> dict[str, Version]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in PINNED_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    floors: dict[str, Version] = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement.strip())
        assert match, f"pyproject.toml: {requirement!r} is not 'name>=version'; .ci/oldest.txt needs its floor"
        name, floor = _name(match[1]), Version(match[3])
        assert floors.get(name, floor) == floor, f"pyproject.toml gives {name} two floors: {floors[name]}, {floor}"
        floors[name] = floor
    return floors


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in OLDEST.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f".ci/oldest.txt: {line!r} is not an exact pin 'name==version'"
            pins[_name(name)] = Version(version.strip())
    return pins


def _show(versions: dict[str, Version]) -> str:
    return ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))


def test_every_floor_is_pinned_exactly_in_the_oldest_constraints() -> None:
    floors, pins = _floors(), _pins()
    assert pins == floors, (
        f"pyproject.toml's floors ({_show(floors)}) and .ci/oldest.txt's pins ({_show(pins)}) disagree: "
        "raise a floor in both files together"
    )


def test_ci_runs_the_oldest_and_the_newest_dependencies() -> None:
    script = CI.read_text(encoding="utf-8")
    assert ".ci/oldest.txt" in script and "--upgrade" in script


OLDEST_TESTS = ROOT / ".ci" / "oldest-tests.txt"
#: The import names of the extras' packages whose distribution name differs from them.
_IMPORT_NAMES = {"matrix-synapse": "synapse", "pytest-twisted": "pytest_twisted", "pytest-xdist": "xdist",
                 "hypothesis[redis]": "hypothesis"}


def _third_party_imports() -> list[str]:
    """The import names of the test tools and every package of the ``thirdparty`` extra (read from
    pyproject.toml, so a library added to the test bed is covered without editing this file)."""
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    names = ["hypothesis", "coverage", "jsonschema", "pytest_twisted", "xdist"]
    for requirement in extras["thirdparty"]:
        name = re.split(r"[<>=!~; ]", requirement, maxsplit=1)[0]
        names.append(_IMPORT_NAMES.get(name, name.replace("-", "_")))
    return names


#: A test file that names one of these (or drives pytest through pytester) meets a dependency's behaviour
#: directly, so the oldest run must run it (rule 1 of .ci/oldest-tests.txt). Twisted is not among them:
#: most test files build their subjects on it, and the list's other rules choose among those.
_DEPENDENCY_USE = re.compile(
    rf"^\s*(?:from|import) (?:{'|'.join(map(re.escape, _third_party_imports()))})\b|pytester",
    re.MULTILINE,
)


def _oldest_tests() -> list[str]:
    lines = OLDEST_TESTS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_oldest_run_lists_existing_test_files_once() -> None:
    listed = _oldest_tests()
    assert listed, ".ci/oldest-tests.txt lists no test file"
    missing = [path for path in listed if not (ROOT / path).is_file() or not Path(path).name.startswith("test_")]
    assert not missing, f".ci/oldest-tests.txt lists {missing}, which are not test files: fix or remove the lines"
    twice = sorted({path for path in listed if listed.count(path) > 1})
    assert not twice, f".ci/oldest-tests.txt lists {twice} more than once: keep one line each"
    script = CI.read_text(encoding="utf-8")
    assert ".ci/oldest-tests.txt" in script and '"${oldest_tests[@]}"' in script, ".ci/run no longer runs the list"


def test_every_test_file_that_uses_a_dependency_directly_runs_on_the_oldest_versions() -> None:
    listed = set(_oldest_tests())
    users = {
        f"tests/{path.name}"
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        if path.name.startswith("test_thirdparty") or _DEPENDENCY_USE.search(path.read_text(encoding="utf-8"))
    }
    unlisted = sorted(users - listed)
    assert not unlisted, (
        f"{unlisted} use Hypothesis, coverage, jsonschema, pytester or a third-party package (or test the third-party "
        "test bed) but are not in "
        ".ci/oldest-tests.txt, so CI never runs them on the oldest versions allowed: add them to its rule 1"
    )
