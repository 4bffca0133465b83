"""Put a submission back into the lab's shape before nbgrader sees it.

Students delete cells, turn code cells into markdown, or lose nbgrader's metadata. nbgrader
restores the *contents* of locked cells, but a deleted answer cell leaves a NameError that
zeroes every later check, and its own re-adding of deleted test cells can fail outright.
So every cell of the released lab is matched to the submission by its nbgrader id; a missing
one comes back from the release (an answer cell as its unanswered stub) where it belongs, and
each change is reported, so the student learns what happened and the class still gets graded.
"""

from __future__ import annotations

import copy

import nbformat


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_answer(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def repair(submission: nbformat.NotebookNode, release: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """A copy of ``submission`` holding every cell of ``release``, and notes on what was fixed."""
    nb = copy.deepcopy(submission)
    notes: list[str] = []
    seen: set[str] = set()
    for cell in nb.cells:  # a copied cell keeps its id: only the first copy counts
        grade_id = _grade_id(cell)
        if grade_id in seen:
            del cell.metadata["nbgrader"]
            notes.append(f"ignored a duplicate of cell {grade_id}")
        elif grade_id:
            seen.add(grade_id)

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
            notes.append(f"restored deleted {what} {grade_id}")
            continue
        cell = nb.cells[found]
        if cell.cell_type != original.cell_type:
            retyped = {"cell_type": original.cell_type, "metadata": cell.metadata, "source": cell.source}
            if original.cell_type == "code":
                retyped |= {"outputs": [], "execution_count": None}
            nb.cells[found] = nbformat.from_dict(retyped | {"id": cell.get("id", grade_id)})
            notes.append(f"turned cell {grade_id} back into a {original.cell_type} cell")
        position = max(position, found)
    return nb, notes
