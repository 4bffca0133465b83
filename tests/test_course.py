"""What a newcomer meets first: the README's module table, the Colab stamps, working copies, and labs
that stay in sync with their solutions however JupyterLab saves them."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from course import ROOT, read

from interplab.colab import BADGE_URL, Source
from interplab.grading.build import drift, essence, stamped_notebooks
from interplab.syllabus import MODULES, readme_table, with_table
from interplab.working_copy import start

README = (ROOT / "README.md").read_text()


def interplab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interplab.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_the_readme_module_table_is_the_syllabus_and_what_is_built():
    assert with_table(README, readme_table(ROOT)) == README, "run `interplab syllabus --write` to update the README"
    assert [m.number for m in MODULES] == [f"{i:02d}" for i in range(9)]
    assert "| 00 | Tour | [lesson](lessons/00_tour.ipynb) ([Colab](" in README
    for m in MODULES:
        assert (f"[lesson]({m.lesson})" in README) == m.built(ROOT), m.number


def test_every_lesson_and_lab_on_disk_is_in_the_syllabus():
    """A module merged under a name the syllabus does not know fails here, not silently off the table."""
    lessons = {m.lesson for m in MODULES}
    labs = {m.lab for m in MODULES}
    for path in (ROOT / "lessons").glob("*.ipynb"):
        assert path.relative_to(ROOT).as_posix() in lessons, f"{path.name}: add it to interplab/syllabus.py"
    for folder in (ROOT / "labs").iterdir():
        assert folder.name in labs, f"labs/{folder.name}: add it to interplab/syllabus.py"


def test_the_readme_points_only_inside_the_repository():
    for where in ("../shared", "/work/", "COURSE_DESIGN"):
        assert where not in README
    for doc in ("docs/syllabus.md", "docs/instructors.md"):
        assert doc in README and (ROOT / doc).is_file()


def test_every_notebook_carries_the_course_colab_source():
    source = Source.read(ROOT)
    notebooks = {**stamped_notebooks(ROOT), **{p: p.relative_to(ROOT).as_posix() for p in (ROOT / "labs").rglob("*.ipynb")}}
    assert len(notebooks) >= 2 * len(list((ROOT / "labs").iterdir())) + 1
    for path, opens in notebooks.items():
        cells = read(path).cells
        assert BADGE_URL.search(cells[0].source).group(0) == source.badge_url(opens), path
        setup = next(c for c in cells if c.cell_type == "code")
        assert setup.source == source.setup_cell(), f"{path}: run `interplab build`"
        install = setup.source.split("%pip install", 1)[1]
        assert f'"{source.requirement}"' in install and "--constraint" in install


def test_a_fork_sets_its_colab_source_in_one_place(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.interplab.colab]\nrepository = "uni-x/interp-course"\nbranch = "fall"\n')
    fork = Source.read(tmp_path)
    nb = read(ROOT / "lessons" / "00_tour.ipynb")
    from interplab.colab import stamp

    assert stamp(nb, "lessons/00_tour.ipynb", fork)
    assert "https://colab.research.google.com/github/uni-x/interp-course/blob/fall/lessons/00_tour.ipynb" in nb.cells[0].source
    assert '"interplab @ git+https://github.com/uni-x/interp-course@fall"' in nb.cells[1].source
    assert not stamp(nb, "lessons/00_tour.ipynb", fork)  # stamping twice changes nothing
    (tmp_path / "pyproject.toml").write_text('[tool.interplab.colab]\nrepository = "not a repo"\n')
    with pytest.raises(ValueError, match="OWNER/NAME"):
        Source.read(tmp_path)


def _saved_by_jupyterlab(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What running and saving a notebook in JupyterLab (or pressing Validate) adds to it."""
    nb = copy.deepcopy(nb)
    nb.metadata["language_info"] = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                                    "mimetype": "text/x-python", "name": "python", "version": "3.11.7"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"saved-{i}"
        cell.metadata["execution"] = {"iopub.execute_input": "2026-11-30T10:00:00Z"}
        if cell.cell_type == "code":
            cell.execution_count = i
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    return nb


def test_drift_ignores_what_saving_adds_and_reports_what_changes_a_lab(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    for name in ("solutions", "lessons", "autograder", "pyproject.toml"):
        (course / name).symlink_to(ROOT / name)
    for lab in ("02_induction", "03_superposition"):
        (course / "labs" / lab).mkdir(parents=True)
    saved = course / "labs" / "02_induction" / "induction_heads.ipynb"
    nbformat.write(_saved_by_jupyterlab(read(ROOT / "labs" / "02_induction" / "induction_heads.ipynb")), str(saved))
    assert saved.read_bytes() != (ROOT / "labs" / "02_induction" / "induction_heads.ipynb").read_bytes()
    edited = read(ROOT / "labs" / "03_superposition" / "superposition.ipynb")
    locked = next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("locked") and c.cell_type == "code"
                  and c.metadata["nbgrader"].get("grade"))
    locked.source += "\n# a change to a locked check cell"
    nbformat.write(edited, str(course / "labs" / "03_superposition" / "superposition.ipynb"))

    assert drift(course, ["02_induction", "03_superposition"]) == [
        "labs/03_superposition/superposition.ipynb differs from its solution"]
    assert essence(saved) == essence(ROOT / "labs" / "02_induction" / "induction_heads.ipynb")


def test_start_copies_the_course_into_an_ignored_folder_and_never_overwrites(tmp_path):
    work = tmp_path / "work"
    first = start(ROOT, into=work)
    copies = {c.copy.relative_to(work).as_posix() for c in first}
    assert "lessons/00_tour.ipynb" in copies and "labs/02_induction/induction_heads.ipynb" in copies
    assert {c.status for c in first} == {"new"}
    lab = work / "labs" / "02_induction" / "induction_heads.ipynb"
    mine = read(lab)
    answer = next(c for c in mine.cells if c.metadata.get("nbgrader", {}).get("solution"))
    answer.source = "def attention_pattern(q, k):\n    return 'my work'"
    nbformat.write(mine, str(lab))

    again = {c.copy: c for c in start(ROOT, ["02"], into=work)}
    assert again[lab].status == "kept" and "'my work'" in lab.read_text()
    assert set(again) == {work / "lessons" / "02_induction_heads.ipynb", lab}

    fresh = {c.copy: c for c in start(ROOT, ["02_induction"], fresh=True, into=work)}
    assert "'my work'" not in lab.read_text() and "'my work'" in fresh[lab].backup.read_text()

    # the course's lab changes (a check cell is edited): the copy is kept, and called outdated
    course_lab = tmp_path / "course" / "labs" / "02_induction" / "induction_heads.ipynb"
    course_lab.parent.mkdir(parents=True)
    nb = read(ROOT / "labs" / "02_induction" / "induction_heads.ipynb")
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")).source += "\n# updated"
    nbformat.write(nb, str(course_lab))
    from interplab.working_copy import outdated

    assert outdated(lab, course_lab) and not outdated(lab, ROOT / "labs" / "02_induction" / "induction_heads.ipynb")


def test_the_start_command_and_its_errors(tmp_path):
    done = interplab("start", "00", "--into", str(tmp_path / "mine"))
    assert done.returncode == 0, done.stderr
    assert "new" in done.stdout and "00_tour.ipynb" in done.stdout and "1 copied" in done.stdout
    unknown = interplab("start", "42", "--into", str(tmp_path / "mine"))
    assert unknown.returncode == 2 and "no module '42'" in unknown.stderr and "02 (02_induction)" in unknown.stderr
    unbuilt = next((m for m in MODULES if not m.built(ROOT)), None)
    if unbuilt is not None:
        missing = interplab("start", unbuilt.number, "--into", str(tmp_path / "mine"))
        assert missing.returncode == 2 and "not built yet" in missing.stderr


def test_git_ignores_the_working_copies():
    ignored = subprocess.run(["git", "check-ignore", "-q", "work/labs/02_induction/induction_heads.ipynb"], cwd=ROOT)
    assert ignored.returncode == 0


def test_training_shows_a_progress_bar_that_tqdm_disable_silences():
    script = "from interplab.train import progress_bar\nfor _ in progress_bar(range(3), 'training'): pass"
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env={**os.environ, "TQDM_DISABLE": "1"})
    assert "training: 100%" in shown.stderr and "3/3" in shown.stderr
    assert quiet.stderr == "" and quiet.returncode == 0
