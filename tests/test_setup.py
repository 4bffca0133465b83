"""The set-up files agree with each other and with the README."""

import re

from course import ROOT


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*-?\s*([A-Za-z0-9_.-]+)==([^\s]+)\s*$", text, flags=re.M))


def test_environment_yml_has_the_same_pins_as_constraints():
    constraints = _pins((ROOT / "constraints.txt").read_text())
    conda = _pins((ROOT / "environment.yml").read_text())
    assert conda.pop("torch") == "2.13.0"
    assert conda == constraints


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "`make lab`" in readme and "`make test`" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_ci_installs_the_browser_from_the_system_and_never_downloads_one():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install -y -qq chromium" in ci and "playwright install" not in ci
    assert "playwright==" in (ROOT / "constraints.txt").read_text()
