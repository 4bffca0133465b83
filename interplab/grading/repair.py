"""Put a submission back into the lab's shape before nbgrader sees it.

Students delete cells, turn code cells into markdown, rewrite locked cells, or lose nbgrader's
metadata. nbgrader restores the *contents* of locked cells (silently: here they are restored and
noted, so the CSV says what the student changed), but a deleted answer cell leaves a NameError that
zeroes every later check, and its own re-adding of deleted test cells can fail outright.
So every cell of the released lab is matched to the submission by its nbgrader id; a missing
one comes back from the release (an answer cell as its unanswered stub) where it belongs, and
each change is reported, so the student learns what happened and the class still gets graded.
"""

from __future__ import annotations

import copy

import nbformat


#: The nbgrader metadata that decides what a cell is worth and whether it is graded.
_GRADING_KEYS = ("grade", "solution", "locked", "task", "points")


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _is_answer(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def _is_locked(cell) -> bool:
    """A cell the student may not change (a check, the lab's own code or prose), as opposed to an answer."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("locked")) and not meta.get("solution")


def repair(submission: nbformat.NotebookNode, release: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """A copy of ``submission`` holding every cell of ``release``, and notes on what was fixed
    (one per kind of fix, naming its cells: a lab of twenty exercises fits the CSV's status)."""
    nb = copy.deepcopy(submission)
    notes: list[tuple[str, str]] = []  # (what was done, "{}" for the cell; the cell)
    seen: set[str] = set()
    # Grading metadata is the release's, never the student's: a cell the lab does not have
    # (a forged "grade" cell worth 100 points, a grade_id nbgrader's database lacks) would
    # crash nbgrader or count, and an answer cell marked as graded would too. So a cell of
    # the lab gets the release's metadata back, any other loses its grading metadata.
    expected = {_grade_id(c): c.metadata["nbgrader"] for c in release.cells if _grade_id(c)}
    for cell in nb.cells:  # a copied cell keeps its id: only the first copy counts
        if "nbgrader" not in cell.get("metadata", {}):
            continue
        grade_id = _grade_id(cell)
        if grade_id not in expected:
            del cell.metadata["nbgrader"]
            notes.append(("ignored grading metadata on a cell that is not part of the lab ({})", grade_id or "no id"))
        elif grade_id in seen:
            del cell.metadata["nbgrader"]
            notes.append(("ignored a duplicate of cell {}", grade_id))
        else:
            seen.add(grade_id)
            changed = [key for key in _GRADING_KEYS if cell.metadata["nbgrader"].get(key) != expected[grade_id].get(key)]
            cell.metadata["nbgrader"] = copy.deepcopy(expected[grade_id])
            if changed:  # a checksum from another build of the release is not worth a note
                notes.append((f"restored the grading metadata ({', '.join(changed)}) of cell {{}}", grade_id))

    position = -1
    for original in release.cells:
        grade_id = _grade_id(original)
        if not grade_id:
            continue
        found = next((i for i, c in enumerate(nb.cells) if _grade_id(c) == grade_id), None)
        if found is None:
            position += 1
            nb.cells.insert(position, copy.deepcopy(original))
            what = "answer cell (left unanswered)" if _is_answer(original) else "cell"
            notes.append((f"restored deleted {what} {{}}", grade_id))
            continue
        cell = nb.cells[found]
        if cell.cell_type != original.cell_type:
            retyped = {"cell_type": original.cell_type, "metadata": cell.metadata, "source": cell.source}
            if original.cell_type == "code":
                retyped |= {"outputs": [], "execution_count": None}
            nb.cells[found] = nbformat.from_dict(retyped | {"id": cell.get("id", grade_id)})
            notes.append((f"turned cell {{}} back into a {original.cell_type} cell", grade_id))
        if _is_locked(original) and nb.cells[found].source.rstrip() != original.source.rstrip():
            nb.cells[found].source = original.source  # nbgrader would restore it silently; the CSV says so
            notes.append(("restored locked cell {} as released", grade_id))
        position = max(position, found)
    return nb, _grouped(notes)


def _grouped(notes: list[tuple[str, str]]) -> list[str]:
    """One note per kind of fix, ``restored deleted cell check_a, check_b``: what changes the
    student's code first (cells restored or retyped), then what only touched metadata."""
    cells: dict[str, list[str]] = {}
    for template, cell in notes:
        cells.setdefault(template, []).append(cell)
    first = sorted(cells, key=lambda template: not template.startswith(("restored deleted", "turned")))
    return [template.format(", ".join(cells[template])) for template in first]
