"""Nothing secret reaches a graded kernel: not the seed, not the grader's environment.

A class is graded with private references made from a long random seed, while the grader's own
environment holds a secret of the instructor's. The submission is an honest, complete lab with one
more cell that looks for both everywhere a kernel can look: its environment, every process's
environment and command line it can read, and the contents of every file in its private folder, its
/tmp, its home and the course package it is given. It prints what it searched and what it found;
the graded notebook (whose outputs are the kernel's own) must show the search ran and found nothing.
"""

import json
import secrets
import shutil

import nbformat
import pytest
from course import LAB, ROOT, completed_lab

from interplab.grading.course import default_references
from interplab.grading.grade import grade
from interplab.grading.references import write_inputs

PROBE = r'''
import os, pathlib, interplab
wanted = {name: bytes.fromhex(value) for name, value in WANTED.items()}
found, searched = [], 0
def look(where, data):
    global searched
    searched += 1
    found.extend(f"{name} in {where}" for name, value in wanted.items() if value in data)
look("os.environ", repr(dict(os.environ)).encode())
for proc in pathlib.Path("/proc").iterdir():
    for part in ("environ", "cmdline"):
        try:
            look(f"{proc}/{part}", (proc / part).read_bytes())
        except OSError:
            pass
roots = {os.getcwd(), "/tmp", os.path.expanduser("~"), os.path.dirname(interplab.__file__)}
for root in roots:
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            try:
                if os.path.getsize(path) < 50_000_000:
                    look(path, open(path, "rb").read())
            except OSError:
                pass
print(f"PROBE searched {searched} places; environment keys: {sorted(os.environ)}")
print("PROBE found:", found or "nothing")
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    seed, instructor_secret = secrets.token_hex(16), secrets.token_hex(16)
    # private references: the default ones' answers (the grades don't matter here) with cases from a secret seed
    refs = tmp / "references"
    shutil.copytree(default_references(ROOT) / LAB, refs / LAB, ignore=shutil.ignore_patterns("inputs"))
    write_inputs(LAB, seed, refs / LAB / "inputs")
    meta = json.loads((refs / LAB / "meta.json").read_text())
    (refs / LAB / "meta.json").write_text(json.dumps(meta | {"seed": seed}))

    nb = completed_lab()
    wanted = {"seed": seed.encode().hex(), "instructor": instructor_secret.encode().hex()}
    nb.cells.append(nbformat.v4.new_code_cell(f"WANTED = {wanted!r}\n{PROBE}"))
    (tmp / "submissions").mkdir()
    nbformat.write(nb, str(tmp / "submissions" / "mallory.ipynb"))

    with pytest.MonkeyPatch.context() as env:
        env.setenv("INSTRUCTOR_API_TOKEN", instructor_secret)
        env.setenv("INTERPLAB_SEED", seed)  # as an instructor's shell might hold it
        rows = grade(ROOT, LAB, tmp / "submissions", tmp / "grades.csv", references=refs, work=tmp / "work",
                     feedback=False)
    graded = nbformat.read(str(tmp / "work" / "autograded" / "mallory" / LAB / "induction_heads.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.get("outputs", []))
    return rows[0], printed, seed, instructor_secret


def test_the_probe_ran_and_searched_widely(graded):
    _, printed, _, _ = graded
    searched = int(printed.split("PROBE searched ")[1].split()[0])
    assert searched > 100, printed[-2000:]
    assert "INTERPLAB_RECORD_DIR" in printed  # it printed the environment it was given


def test_no_secret_reaches_the_kernel(graded):
    row, printed, seed, instructor_secret = graded
    assert "PROBE found: nothing" in printed, printed[-2000:]
    assert seed not in printed and instructor_secret not in printed
    assert "INSTRUCTOR_API_TOKEN" not in printed and "INTERPLAB_SEED" not in printed
    assert row.status.startswith("graded"), row.status
