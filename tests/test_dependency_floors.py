"""The oldest versions CI tests are the oldest pyproject.toml allows, and CI tests them.

``.ci/run`` runs the fast tests a second time with every dependency pinned to
its floor (``.ci/oldest.txt``) and a third time with every one upgraded; a
floor raised in one file and not the other would test a range nobody allows.
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
