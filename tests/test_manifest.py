"""The syllabus is the course's one manifest: every module it lists has every part a module needs.

A module is a lesson, and for most a graded lab: its source notebook and generated student version, the
spec of its exercises, its known mistakes, public and default hidden references, a class test, and the
models it names on each tier. This test names, by path, whatever a listed module still lacks. A module
that has none of its parts yet is *in preparation* (the README's table says so) and is skipped with that
list; one that has some parts and not others fails with it.
"""

from __future__ import annotations

import re

import pytest
from course import ROOT

from interplab.models import HUB, SHIPPED
from interplab.syllabus import MODULES, Module

TESTS = ROOT / "tests"


def _class_test_of(lab: str) -> bool:
    """Some test module grades the lab's class (``GradedClass``, or the grader called directly) with ``LAB``
    naming the lab, set there or in the helper module it imports it from (lab 02's is ``course.LAB``)."""
    naming = {path.stem for path in TESTS.glob("*.py")
              if re.search(rf'^LAB = "{re.escape(lab)}"$', path.read_text(), flags=re.M)}
    for path in TESTS.glob("test_*.py"):
        text = path.read_text()
        grades = "GradedClass" in text or re.search(r"\bgrade\(", text)
        if grades and (path.stem in naming or any(f"from {name} import" in text for name in naming)):
            return True
    return False


def parts(m: Module) -> dict[str, bool]:
    """Every part ``m`` needs, by the path (or name) where it belongs, and whether it is there."""
    found = {m.lesson: (ROOT / m.lesson).is_file(),
             "docs/syllabus.md: its row": f"| {m.number} | {m.title} |" in (ROOT / "docs" / "syllabus.md").read_text()}
    if m.cpu_model is not None:
        found[f"interplab/shipped/{m.cpu_model}/ (interplab.models.SHIPPED)"] = m.cpu_model in SHIPPED and (
            SHIPPED[m.cpu_model] / "model.safetensors").is_file()
    if m.gpu_model is not None:
        found[f"interplab.models.HUB[{m.gpu_model!r}]"] = m.gpu_model in HUB
    if m.lab is None:
        return found
    found |= {
        f"solutions/{m.lab}/{m.notebook}.ipynb": (ROOT / "solutions" / m.lab / f"{m.notebook}.ipynb").is_file(),
        f"labs/{m.lab}/{m.notebook}.ipynb (interplab build)": (ROOT / "labs" / m.lab / f"{m.notebook}.ipynb").is_file(),
        f"interplab/exercises/{m.spec or '<spec>'}.py (syllabus: spec=)": m.spec is not None and (
            ROOT / "interplab" / "exercises" / f"{m.spec}.py").is_file(),
        f"autograder/mutants/{m.lab}.json": (ROOT / "autograder" / "mutants" / f"{m.lab}.json").is_file(),
        f"interplab/references/{m.lab}/meta.json (interplab references)": (
            ROOT / "interplab" / "references" / m.lab / "meta.json").is_file(),
        f"autograder/references/{m.lab}/meta.json (interplab references)": (
            ROOT / "autograder" / "references" / m.lab / "meta.json").is_file(),
        f"tests/test_*.py: a GradedClass with LAB = {m.lab!r}": _class_test_of(m.lab),
    }
    return found


@pytest.mark.parametrize("m", MODULES, ids=[m.number for m in MODULES])
def test_every_module_the_syllabus_lists_has_all_its_parts(m):
    found = parts(m)
    lacking = [where for where, present in found.items() if not present]
    # the syllabus row and the models may be written before the module: they do not make it "started"
    started = [where for where, present in found.items() if present and not where.startswith(("docs/", "interplab/shipped", "interplab.models"))]
    if lacking and not started:
        pytest.skip(f"module {m.number} is in preparation; it lacks: " + ", ".join(lacking))
    assert not lacking, f"module {m.number} ({m.title}) lacks: " + ", ".join(lacking)


def test_the_labs_the_grader_knows_are_the_syllabus_labs():
    from interplab.exercises import all_labs

    assert [spec.name for spec in all_labs()] == [m.lab for m in MODULES if m.lab and m.spec]
    for spec in all_labs():
        assert spec.notebook == next(m.notebook for m in MODULES if m.lab == spec.name)
