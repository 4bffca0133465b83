"""The course as students and instructors see it: JupyterLab in a real (headless) browser.

A student's JupyterLab runs in a scratch folder holding working copies made by ``interplab start``
(never the repository's own ``work/``). The instructor's is started exactly as ``make lab`` starts it,
in the course folder, where ``nbgrader_config.py`` shows the course to the formgrader.
"""

import os
import re
import subprocess

import nbformat
import pytest
from browser import Notebook, browser_page, inked, jupyter_lab, lab_command, url_of
from course import MUTANTS, ROOT, SOLUTION, answer_cells, read, strip_markers

from interplab.grading.build import essence, lab_names
from interplab.working_copy import start

LAB_NOTEBOOK = "work/labs/02_induction/induction_heads.ipynb"
EXERCISE = "attention_pattern"
MISTAKE = next(m for m in MUTANTS if m.name == "no_scaling")


@pytest.fixture(scope="module")
def page():
    """One headless Chromium page for the whole file (Playwright allows one driver per thread)."""
    with browser_page() as page:
        yield page


@pytest.fixture(scope="module")
def student(tmp_path_factory, page):
    """A student's JupyterLab (as `make lab` starts it) over working copies of the Tour and lab 02."""
    home = tmp_path_factory.mktemp("student")
    start(ROOT, ["00", "02"], into=home / "work")
    command = [w if not w.startswith("--ServerApp.root_dir") else f"--ServerApp.root_dir={home}" for w in lab_command(ROOT)]
    with jupyter_lab(command, home, home / "jupyter.log", home / "settings") as base:
        yield home, base, page


def test_make_lab_allows_root_only_for_root_and_opens_the_working_copies():
    command = lab_command(ROOT)
    assert ("--allow-root" in command) == (os.geteuid() == 0)
    assert "--ServerApp.default_url=/lab/tree/work" in command and "--ServerApp.root_dir=." in command


def test_the_tour_runs_in_jupyterlab_and_its_attention_pattern_renders(student):
    home, base, page = student
    tour = Notebook(page, base, "work/lessons/00_tour.ipynb")
    tour.run_all()
    tour.wait_until_done()
    assert tour.errors() == []
    pattern = page.locator(".jp-OutputArea-output[data-mime-type='text/html']", has=page.locator("canvas")).first
    cfg_heads = 4  # tiny-lm: one thumbnail per head, and the enlarged pattern
    ink = inked(page, pattern, cfg_heads)
    assert len(ink) >= cfg_heads and all(n > 0 for n in ink), ink
    assert "Head Selector" in pattern.inner_text()
    pattern.hover()  # interactive: hovering a head's thumbnail is what students do
    figures = page.locator(".jp-OutputArea-output[data-mime-type='image/png'] img")
    assert figures.count() >= 2 and all(box["width"] > 100 for box in (f.bounding_box() for f in figures.all()))
    text = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
    assert "correct on all" in text and "wrong on all" in text


def test_a_lab_check_explains_a_mistake_then_passes_and_saving_keeps_the_lab_intact(student):
    home, base, page = student
    lab = Notebook(page, base, LAB_NOTEBOOK)
    lab.run_all()  # an untouched lab runs until its first check, which says the exercise is not done
    lab.wait_until_done()
    check = lab.cell(f'lab.check("{EXERCISE}"')
    assert "not done yet" in lab.outputs_text(check)

    answer = lab.cell(f"def {EXERCISE}(")
    solution = strip_markers(answer_cells(read(SOLUTION))[f"answer_{EXERCISE}"])
    lab.type_into(answer, solution.replace(MISTAKE.find, MISTAKE.replace))
    lab.run(answer)
    lab.run(check)
    assert MISTAKE.message in lab.outputs_text(check)

    lab.type_into(answer, solution)
    lab.run(answer)
    lab.run(check)
    assert re.search(rf"✅ {EXERCISE}: correct", lab.outputs_text(check)), lab.outputs_text(check)

    lab.save()
    saved = home / LAB_NOTEBOOK
    original = ROOT / "labs" / "02_induction" / "induction_heads.ipynb"
    mine, theirs = essence(saved), essence(original)
    changed = [i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
    assert len(mine) == len(theirs) and len(changed) == 1, changed  # only the answer typed
    assert mine[changed[0]][2]["grade_id"] == f"answer_{EXERCISE}"
    assert nbformat.read(str(saved), as_version=4).metadata.get("language_info")  # JupyterLab did save it
    committed = subprocess.run(["git", "show", "HEAD:labs/02_induction/induction_heads.ipynb"], cwd=ROOT,
                               capture_output=True, check=True).stdout
    assert original.read_bytes() == committed  # the course's own lab is untouched


def test_a_kernel_that_fails_to_start_is_chosen_in_the_dialog_jupyterlab_opens(student):
    """On a loaded machine JupyterLab's first kernel start can fail; it then asks which kernel to start (CI saw this
    "Select Kernel" dialog take the Run menu's click). Make the first start fail and see the notebook get its kernel."""
    home, base, page = student
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, home / "work" / "first_start.ipynb")  # no kernel runs for it yet
    failed = []

    def fail_first_start(route):
        if route.request.method == "POST" and not failed:
            failed.append(route.request.url)
            return route.fulfill(status=500, body='{"message": "the server was too slow"}')
        return route.continue_()

    page.route(re.compile(r".*/api/sessions.*"), fail_first_start)
    try:
        first = Notebook(page, base, "work/first_start.ipynb")  # waits for a named, idle kernel, answering dialogs
    finally:
        page.unroute(re.compile(r".*/api/sessions.*"))
    assert failed and any(d.startswith("Select Kernel") for d in first.dialogs), first.dialogs
    first.run_all()
    first.wait_until_done()
    assert first.outputs_text(first.cell("print(6 * 7)")).strip() == "42"


def test_the_formgrader_of_make_lab_lists_every_lab(tmp_path, page):
    with jupyter_lab(lab_command(ROOT), ROOT, tmp_path / "jupyter.log", tmp_path / "settings") as base:
        page.goto(url_of(base, "/formgrader/manage_assignments"))
        for lab in lab_names(ROOT):
            page.locator("td.name a", has_text=re.compile(rf"^{lab}$")).first.wait_for()
        log = (tmp_path / "jupyter.log").read_text()
    assert "exchange" not in log.lower(), log  # nbgrader's exchange has a folder it can write
    assert "No nbgrader_config.py" not in log
