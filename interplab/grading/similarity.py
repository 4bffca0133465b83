"""How alike students' answers are: to the published solution, and to each other.

``solutions/`` is public, so the cheapest way to full marks is to copy it, and renaming the
variables is the second cheapest. This module scores every graded answer cell (nbgrader id
``answer_<exercise>``) against the solution's and against every classmate's, on a stream of
tokens that renaming, reformatting, comments, docstrings, type hints and the order of
independent statements do not change:

1. parse the cell with :mod:`ast`; drop docstrings, annotations, imports and the stub's
   ``raise NotImplementedError()``; keep only the *body* of a function defined at the top of the
   cell (its signature is handed out in the stub, so it says nothing); rename every name the
   cell binds (variables, parameters, helpers) to one placeholder. Names the cell only reads
   (``torch``, ``einops``, an earlier exercise's function) and attribute names (``.softmax``)
   stay: they say what the code does. Every string literal becomes one token (einsum letters
   are variable names in disguise);
2. put each block's statements in a canonical order, as far as their data dependencies allow
   (assignments and helper functions move; calls, loops and returns stay in place);
3. print the tree back (``ast.unparse``: one layout for all) and tokenize it;
4. take every run of ``K`` tokens (a k-gram, as in MOSS; all of them rather than a winnowed
   sample, since an answer cell is tens of tokens long), less those of the code the lab hands
   out: the stub, the set-up and helper cells, and every snippet of code in the instructions
   and hints. A student who follows a hint writes what the solution has; that says nothing.

The similarity of two answers is the share of the smaller one's k-grams found in the other
(the overlap coefficient): a copy padded with dead code still scores 1.0. An answer with fewer
than ``MIN_GRAMS`` k-grams of its own is *too short to judge*: a one-line answer that every
correct student writes the same way says nothing about copying, so it gets no score at all.
Per student, the grades CSV gets the mean similarity over the exercises that could be judged,
the exercises at or above ``THRESHOLD``, and the same for the closest classmate; a student with
``FLAG_MATCHES`` or more matching exercises is flagged. ``K``, ``MIN_GRAMS``, ``THRESHOLD`` and
``FLAG_MATCHES`` were chosen on data (``benchmarks/similarity.py``): copies of the solution, edited
and disguised, against answers written independently in other styles (``tests/independent/``).
"""

from __future__ import annotations

import ast
import builtins
import csv
import io
import json
import keyword
import re
import tokenize
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from heapq import heappop, heappush
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

#: Tokens per k-gram.
K = 5
#: An answer with fewer k-grams of its own than this is too short to judge (no score).
MIN_GRAMS = 12
#: A similarity at or above this is reported as a match.
THRESHOLD = 0.7
#: A student with this many matching exercises (with the solution, or with one classmate) is
#: flagged: honest students drawn from the independent corpus never had more than one.
FLAG_MATCHES = 2
#: Only this much of an answer cell is read: no answer needs more, and parsing stays fast.
MAX_SOURCE_CHARS = 20_000
#: A submitted notebook larger than this is not read for comparison (the detailed CSV says so).
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024
#: Blocks with more statements than this keep their order (reordering is quadratic).
MAX_REORDERED_BLOCK = 60

_PLACEHOLDER = "_"
_STRING = "S"
_ANSWER_PREFIX = "answer_"
_MAGIC = re.compile(r"^\s*[%!]")  # IPython magics and shell escapes are not Python


# ---------------------------------------------------------------------------------------------
# Normalising one answer into tokens
# ---------------------------------------------------------------------------------------------


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the cell binds: its variables, parameters, functions and import aliases."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return names


def _is_stub_raise(node: ast.stmt) -> bool:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return False
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


class _Normaliser:
    """Strips what does not change what the code computes, and notes every name the cell binds.

    One pass over the tree, in place: docstrings, bare literals, ``pass``, imports, the stub's
    ``raise NotImplementedError()`` and every annotation go; string literals become ``'S'``.
    Each node that holds a name (a variable, a parameter, a function, an alias) is noted, so
    that ``rename`` can then replace the local ones by the placeholder; a renamed ``Name`` keeps
    its original name in ``_orig``, for the dependency analysis that orders statements.
    """

    _STATEMENT_FIELDS = ("body", "orelse", "finalbody")

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.named: list[tuple[ast.AST, str]] = []  # (node, the attribute holding its name)

    def rename(self, renamed: Callable[[str], bool]) -> None:
        for node, attribute in self.named:
            name = getattr(node, attribute)
            if name is not None and renamed(name):
                if isinstance(node, ast.Name):
                    node._orig = name  # type: ignore[attr-defined]
                setattr(node, attribute, _PLACEHOLDER)

    def body(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        kept = []
        for stmt in statements:
            kind = type(stmt)
            if kind in (ast.Import, ast.ImportFrom):
                self.bound.update(a.asname for a in stmt.names if a.asname)
                continue
            if kind is ast.Pass or _is_stub_raise(stmt):
                continue
            if kind is ast.Expr and type(stmt.value) in (ast.Constant, ast.JoinedStr):
                continue  # docstrings and other bare literals
            if kind is ast.AnnAssign:
                if stmt.value is None:
                    continue
                stmt = ast.Assign(targets=[stmt.target], value=stmt.value, lineno=stmt.lineno)
            kept.append(self.visit(stmt))
        return kept

    def visit(self, node: ast.AST) -> ast.AST:
        kind = type(node)
        if kind is ast.Name:
            if type(node.ctx) is not ast.Load:
                self.bound.add(node.id)
            self.named.append((node, "id"))
            return node
        if kind is ast.Constant:
            return ast.Constant(_STRING) if isinstance(node.value, (str, bytes)) else node
        if kind is ast.JoinedStr:
            return ast.Constant(_STRING)
        if kind is ast.arg:
            node.annotation = node.type_comment = None
            self.bound.add(node.arg)
            self.named.append((node, "arg"))
            return node
        if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            node._orig = node.name  # type: ignore[attr-defined]
            self.bound.add(node.name)
            self.named.append((node, "name"))
            if kind is not ast.ClassDef:
                node.returns = node.type_comment = None
        elif kind is ast.ExceptHandler and node.name:
            self.bound.add(node.name)
            self.named.append((node, "name"))
        elif kind in (ast.Global, ast.Nonlocal):
            self.bound.update(node.names)
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                if field in self._STATEMENT_FIELDS and value and isinstance(value[0], ast.stmt):
                    setattr(node, field, self.body(value) or [ast.Pass()])
                else:
                    value[:] = [self.visit(item) if isinstance(item, ast.AST) else item for item in value]
            elif isinstance(value, ast.AST):
                setattr(node, field, self.visit(value))
        return node


@dataclass(frozen=True)
class _Effects:
    reads: set[str]  # names read (original names, before renaming)
    writes: set[str]  # names bound or changed (x = ..., x[i] = ..., x.w = ..., def x)
    key: tuple  # the statement's normalised shape, to order independent statements


#: Statements that may move past each other when independent; any other (a bare call such as
#: ``loss.backward()``, a return, a loop, a ``with`` block) stays where it is.
_MOVABLE = (ast.Assign, ast.AugAssign, ast.FunctionDef, ast.AsyncFunctionDef)


def _effects(stmt: ast.stmt) -> _Effects:
    """What a movable statement reads and writes, and its shape, in one walk of its tree."""
    reads: set[str] = set()
    writes: set[str] = set()
    key: list = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        kind = type(node)
        key.append(kind.__name__)
        if kind is ast.Name:
            key.append(node.id)
            (reads if type(node.ctx) is ast.Load else writes).add(getattr(node, "_orig", node.id))
            continue
        if kind is ast.Attribute:
            key.append(node.attr)
        elif kind is ast.Constant:
            key.append(repr(node.value))
        elif kind is ast.keyword:
            key.append(node.arg or "**")
        elif kind in (ast.FunctionDef, ast.AsyncFunctionDef):
            writes.add(getattr(node, "_orig", node.name))
        if kind in (ast.Subscript, ast.Attribute) and type(node.ctx) is not ast.Load:
            base = node.value  # x[i] = ... and x.w = ... change x
            while type(base) in (ast.Subscript, ast.Attribute):
                base = base.value
            if type(base) is ast.Name:
                writes.add(getattr(base, "_orig", base.id))
        for field in reversed(node._fields):
            value = getattr(node, field, None)
            if isinstance(value, list):
                stack.extend(v for v in reversed(value) if isinstance(v, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append(value)
    return _Effects(reads, writes, tuple(key))


def _canonical_order(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements in a canonical order: every run of movable statements between two that
    stay in place is sorted topologically, ties going to the smallest shape. Two programs that
    differ only in the order of independent statements come out the same."""
    if len(body) < 2 or len(body) > MAX_REORDERED_BLOCK:
        return body
    out: list[ast.stmt] = []
    run: list[ast.stmt] = []
    for stmt in [*body, None]:
        if isinstance(stmt, _MOVABLE):
            run.append(stmt)
            continue
        out.extend(_sorted_run(run) if len(run) > 1 else run)
        run = []
        if stmt is not None:
            out.append(stmt)
    return out


def _sorted_run(run: list[ast.stmt]) -> list[ast.stmt]:
    effects = [_effects(s) for s in run]
    waiting_on = [0] * len(run)
    unlocks: list[list[int]] = [[] for _ in run]
    for j, b in enumerate(effects):
        for i, a in enumerate(effects[:j]):
            if a.writes & (b.reads | b.writes) or b.writes & a.reads:
                waiting_on[j] += 1
                unlocks[i].append(j)
    ready = sorted((effects[j].key, j) for j in range(len(run)) if waiting_on[j] == 0)
    order: list[ast.stmt] = []
    while ready:
        _, i = heappop(ready)
        order.append(run[i])
        for j in unlocks[i]:
            waiting_on[j] -= 1
            if waiting_on[j] == 0:
                heappush(ready, (effects[j].key, j))
    return order


def _reorder(statements: list[ast.stmt]) -> list[ast.stmt]:
    """Canonical order in a block and every block inside it, innermost first (so each
    statement's shape is final before its own block is ordered)."""
    for stmt in statements:
        for block in _blocks(stmt):
            setattr(*block, _reorder(getattr(*block)))
    return _canonical_order(statements)


def _blocks(stmt: ast.stmt):
    """(node, field) of every statement list directly inside ``stmt``."""
    for node in (stmt, *getattr(stmt, "handlers", ()), *getattr(stmt, "cases", ())):
        for name in ("body", "orelse", "finalbody"):
            value = getattr(node, name, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                yield node, name


#: Tokens of code printed by ``ast.unparse`` (every string literal is already ``'S'``).
_TOKEN = re.compile(r"(?:\d[\w.]*|\.\d\w*)(?:(?<=[eE])[-+]\d+)?|\w+|'S'|\*\*=?|//=?|>>=?|<<=?|->|:=|\.\.\.|[-+*/%&|^@<>=!]=|\S")


def _tokens_of_code(code: str) -> list[str]:
    """Tokens of ``ast.unparse``'s output: one statement a line, four spaces an indent, so a
    regular expression and the indentation do what ``tokenize`` would, five times faster."""
    out: list[str] = []
    levels = [0]
    for line in code.splitlines():
        text = line.lstrip(" ")
        if not text:
            continue
        indent = len(line) - len(text)
        if indent > levels[-1]:
            levels.append(indent)
            out.append("INDENT")
        while indent < levels[-1]:
            levels.pop()
            out.append("DEDENT")
        out.extend(_TOKEN.findall(text))
        out.append("NEWLINE")
    out.extend("DEDENT" for _ in levels[1:])
    return out


def _fallback_tokens(source: str, keep: frozenset[str] | None) -> list[str]:
    """Tokens of a cell that does not parse: names renamed (unless after a dot or kept), literals folded."""
    out: list[str] = []
    for tok in _raw_tokens(source):
        name = tok.type == tokenize.NAME and not keyword.iskeyword(tok.string)
        if name and (not out or out[-1] != ".") and (keep is None or tok.string not in keep):
            out.append(_PLACEHOLDER)
        elif tok.type == tokenize.STRING:
            out.append(repr(_STRING))
        elif tok.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER):
            out.append(tok.string)
    return out


def _raw_tokens(source: str):
    try:
        yield from tokenize.generate_tokens(io.StringIO(source).readline)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return


def normalise(source: str, keep: frozenset[str] | None = None) -> list[str]:
    """The tokens an answer cell is compared on (see the module's docstring for what is erased).

    Names the cell binds are renamed; with ``keep``, every name but those is (for fragments of
    code, such as a hint's, that use local names without binding them).
    """
    source = source[:MAX_SOURCE_CHARS]
    cleaned = "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())
    try:
        tree = ast.parse(cleaned)
        normaliser = _Normaliser()
        tree.body = normaliser.body(tree.body)
        normaliser.rename(normaliser.bound.__contains__ if keep is None else lambda name: name not in keep)
        tree.body = _reorder(tree.body)
        statements = []
        for stmt in tree.body:  # a function's signature comes with the stub: keep its body
            is_def = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
            statements.extend(stmt.body if is_def else [stmt])
        code = ast.unparse(ast.Module(body=[s for s in statements if not isinstance(s, ast.Pass)], type_ignores=[]))
    except Exception:  # a student's cell: whatever fails to parse or print is compared as plain tokens
        return _fallback_tokens(cleaned, keep)
    return _tokens_of_code(code)


# ---------------------------------------------------------------------------------------------
# Fingerprints and scores
# ---------------------------------------------------------------------------------------------

Gram = tuple[str, ...]


def grams(tokens: Sequence[str], k: int = K) -> set[Gram]:
    """Every run of ``k`` consecutive tokens (a shorter stream is one gram of its own)."""
    if not tokens:
        return set()
    if len(tokens) < k:
        return {tuple(tokens)}
    return {tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


@lru_cache(maxsize=65536)
def fingerprint(source: str, given: frozenset[Gram] = frozenset(), k: int = K) -> frozenset[Gram]:
    """The k-grams of an answer's own code: those of its normalised tokens, less the ``given``
    ones (the lab's stub and hints, from ``given_grams``)."""
    return frozenset(grams(normalise(source), k) - given)


def similarity(a: frozenset[Gram], b: frozenset[Gram], min_grams: int = MIN_GRAMS) -> float | None:
    """Share of the smaller answer's k-grams found in the other; None if either is too short."""
    if min(len(a), len(b)) < min_grams:
        return None
    return len(a & b) / min(len(a), len(b))


def _score_matrix(prints: list[frozenset[Gram]], min_grams: int) -> np.ndarray:
    """All pairwise similarities at once; NaN where either answer is too short, and on the diagonal.

    Only k-grams held by two or more answers can be shared, so the 0/1 matrix has a column for
    each of those alone, and one matrix product counts every pair's shared k-grams.
    """
    held = Counter(g for p in prints for g in p)
    columns = {g: i for i, g in enumerate(g for g, c in held.items() if c > 1)}
    incidence = np.zeros((len(prints), max(len(columns), 1)), dtype=np.float32)  # counts stay exact below 2**24
    for row, p in enumerate(prints):
        incidence[row, [columns[g] for g in p if g in columns]] = 1.0
    shared = incidence @ incidence.T
    sizes = np.array([len(p) for p in prints], dtype=np.float32)
    smaller = np.minimum.outer(sizes, sizes)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = shared / smaller
    scores[smaller < min_grams] = np.nan
    np.fill_diagonal(scores, np.nan)
    return scores


# ---------------------------------------------------------------------------------------------
# What the lab hands out
# ---------------------------------------------------------------------------------------------

_FENCED = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_INLINE = re.compile(r"`([^`\n]+)`")


def _snippets(markdown: str) -> list[str]:
    """Code in a markdown cell: fenced blocks whole, and inline spans."""
    blocks = _FENCED.findall(markdown)
    return blocks + _INLINE.findall(_FENCED.sub("", markdown))


@lru_cache(maxsize=65536)
def _snippet_grams(snippet: str, keep: frozenset[str], k: int) -> frozenset[Gram]:
    """A hint's code as k-grams: whole if it parses, else line by line (a hint may be a fragment)."""
    if _parses(snippet):
        return frozenset(grams(normalise(snippet, keep), k))
    lines = [line.strip() for line in snippet.splitlines()]
    return frozenset(g for line in lines if _parses(line) for g in grams(normalise(line, keep), k))


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def given_grams(release: Mapping, k: int = K) -> dict[str, frozenset[Gram]]:
    """exercise -> the k-grams of the code the released lab hands out, which are nobody's own.

    That is every code cell but the answers (set-up, helpers, checks), each answer cell's stub
    (the signature and ``raise NotImplementedError()``), and every snippet of code in the
    notebook's markdown: instructions and hints, which a student who follows them copies into
    the answer as the solution does. A hint's local names are not bound in the hint, so every
    name in it is renamed except the notebook's own (imports, helpers, other exercises) and
    Python's builtins; the exercise's parameters are renamed too, as they are in answers.
    """
    cells = [c for c in _cells(release) if isinstance(c.get("source"), (str, list))]
    sources = [(c.get("cell_type"), _source(c), _answer_id(c)) for c in cells]
    code = [src for kind, src, ex in sources if kind == "code"]
    notebook_names = set(dir(builtins)).union(*(_top_level_names(src) for src in code))
    snippets = [snip for kind, src, _ in sources if kind == "markdown" for snip in _snippets(src)]
    shared = {g for kind, src, ex in sources if kind == "code" and ex is None for g in grams(normalise(src), k)}
    out = {}
    for kind, stub, ex in sources:
        if kind != "code" or ex is None:
            continue
        params = _bound_names(ast.parse(stub)) if _parses(stub) else set()
        keep = frozenset(notebook_names - params)
        out[ex] = frozenset(shared.union(grams(normalise(stub), k), *(_snippet_grams(s, keep, k) for s in snippets)))
    return out


def _top_level_names(source: str) -> set[str]:
    """Names a cell binds for the whole notebook: its imports, assignments and functions."""
    if not _parses(source):
        return set()
    names = set()
    for stmt in ast.parse(source).body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
        else:
            names |= _bound_names(stmt)
    return names


# ---------------------------------------------------------------------------------------------
# A class
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerRow:
    """One student's answer to one exercise, for the detailed CSV."""

    student: str
    exercise: str
    grams: int  # k-grams of the student's own code
    solution: float | None  # similarity to the published solution (None: too short to judge)
    classmate: str  # the most similar classmate on this exercise ('' when none could be judged)
    classmate_score: float | None
    matches: tuple[str, ...]  # every classmate at or above the threshold


@dataclass(frozen=True)
class Summary:
    """One student's line in the grades CSV."""

    solution_mean: float | None  # mean similarity to the solution over the exercises that could be judged
    solution_matches: tuple[str, ...]  # exercises at or above the threshold
    classmate: str  # the classmate with the most matching exercises (ties: highest mean)
    classmate_mean: float | None  # mean similarity to that classmate over exercises judged for both
    classmate_matches: tuple[str, ...]

    @property
    def flag(self) -> str:
        """What to look at: the solution and/or the closest classmate, when enough exercises match."""
        reasons = []
        if len(self.solution_matches) >= FLAG_MATCHES:
            reasons.append("solution")
        if len(self.classmate_matches) >= FLAG_MATCHES:
            reasons.append(f"classmate {self.classmate}")
        return "; ".join(reasons)


#: The columns ``Similarity.columns`` adds to the grades CSV, in order.
COLUMNS = ("similarity_flag", "solution_similarity", "solution_matches", "closest_classmate",
           "classmate_similarity", "classmate_matches")


@dataclass(frozen=True)
class Similarity:
    """Every answer of a class compared with the solution and with every other answer."""

    exercises: tuple[str, ...]
    answers: tuple[AnswerRow, ...]
    students: Mapping[str, Summary]
    threshold: float
    unread: Mapping[str, str]  # student -> why their notebook was not compared

    def columns(self, student: str) -> list[str]:
        """The student's values for ``COLUMNS`` (blank for a notebook that was not compared)."""
        s = self.students.get(student)
        if s is None:
            return [""] * len(COLUMNS)
        return [s.flag, _number(s.solution_mean), " ".join(s.solution_matches), s.classmate,
                _number(s.classmate_mean), " ".join(s.classmate_matches)]

    def write_csv(self, path: Path) -> None:
        """One row per (student, exercise): sizes, scores, the closest classmate and every match."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["student", "exercise", "own_kgrams", "solution_similarity", "closest_classmate",
                             "classmate_similarity", f"classmates_at_or_above_{self.threshold:.2f}"])
            for a in self.answers:
                writer.writerow([a.student, a.exercise, a.grams, _number(a.solution), a.classmate,
                                 _number(a.classmate_score), " ".join(a.matches)])
            for student, why in self.unread.items():
                writer.writerow([student, "", "", "", "", "", f"not compared: {why}"])


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _value(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 4)


def compare(
    answers: Mapping[str, Mapping[str, str]],
    solution: Mapping[str, str],
    exercises: Sequence[str],
    given: Mapping[str, frozenset[Gram]] | None = None,
    threshold: float = THRESHOLD,
    min_grams: int = MIN_GRAMS,
    unread: Mapping[str, str] | None = None,
) -> Similarity:
    """Compare every student's answers (student -> exercise -> cell source) with the solution's
    and with each other's. ``given`` (from ``given_grams``) is the code the lab hands out."""
    given = given or {}
    students = list(answers)
    n = len(students)
    per_exercise = []  # (n+1) x (n+1) scores; the last row and column are the solution
    rows: list[AnswerRow] = []
    for ex in exercises:
        handed_out = given.get(ex, frozenset())
        prints = [fingerprint(answers[s].get(ex, ""), handed_out) for s in students]
        prints.append(fingerprint(solution.get(ex, ""), handed_out))
        scores = _score_matrix(prints, min_grams)
        per_exercise.append(scores)
        for i, student in enumerate(students):
            peers = scores[i, :n]
            best = int(np.nanargmax(peers)) if n > 1 and not np.all(np.isnan(peers)) else None
            rows.append(AnswerRow(
                student, ex, len(prints[i]), _value(scores[i, n]),
                students[best] if best is not None else "", _value(peers[best]) if best is not None else None,
                tuple(students[j] for j in np.flatnonzero(peers >= threshold)),
            ))
    summaries = _summaries(students, exercises, per_exercise, threshold)
    return Similarity(tuple(exercises), tuple(rows), summaries, threshold, dict(unread or {}))


def _summaries(students: list[str], exercises: Sequence[str], per_exercise: list[np.ndarray],
               threshold: float) -> dict[str, Summary]:
    n = len(students)
    stack = np.stack(per_exercise) if per_exercise else np.full((0, n + 1, n + 1), np.nan)
    judged = ~np.isnan(stack)
    with np.errstate(invalid="ignore"):
        matched = np.where(judged, stack >= threshold, False)
        mean = np.where(judged, stack, 0.0).sum(0) / judged.sum(0)  # NaN where nothing was judged
    count = matched.sum(0)
    # The closest classmate: most matching exercises, then the highest mean similarity.
    rank = np.where(np.isnan(mean), -1.0, count * 2.0 + np.nan_to_num(mean, nan=0.0))[:n, :n]
    np.fill_diagonal(rank, -np.inf)
    out = {}
    for i, student in enumerate(students):
        best = int(np.argmax(rank[i])) if n > 1 and rank[i].max() >= 0 else None
        out[student] = Summary(
            solution_mean=_value(mean[i, n]),
            solution_matches=tuple(ex for e, ex in enumerate(exercises) if matched[e, i, n]),
            classmate=students[best] if best is not None else "",
            classmate_mean=_value(mean[i, best]) if best is not None else None,
            classmate_matches=tuple(ex for e, ex in enumerate(exercises) if best is not None and matched[e, i, best]),
        )
    return out


# ---------------------------------------------------------------------------------------------
# Reading notebooks
# ---------------------------------------------------------------------------------------------


def _cells(notebook: Mapping) -> list[Mapping]:
    cells = notebook.get("cells") if isinstance(notebook, Mapping) else None
    return [c for c in cells if isinstance(c, Mapping)] if isinstance(cells, list) else []


def _source(cell: Mapping) -> str:
    """A cell's source, whatever shape a student's editor left it in ('' if none)."""
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source[:MAX_SOURCE_CHARS] if isinstance(source, str) else ""


def _answer_id(cell: Mapping) -> str | None:
    """The exercise whose answer cell this is (nbgrader id ``answer_<exercise>``), or None."""
    meta = cell.get("metadata")
    nbgrader = meta.get("nbgrader") if isinstance(meta, Mapping) else None
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, Mapping) else None
    if isinstance(grade_id, str) and grade_id.startswith(_ANSWER_PREFIX):
        return grade_id[len(_ANSWER_PREFIX):]
    return None


def answer_cells(notebook: Mapping) -> dict[str, str]:
    """exercise -> the code a notebook gives as its answer.

    That is the answer cell (nbgrader id ``answer_<exercise>``) and any other code cell that
    defines a top-level function of the exercise's name: a student who leaves the stub and
    writes the function in a new cell, or pastes every function into one cell, is compared on
    that code. Reads the notebook's JSON as it is, whatever a student did to it.
    """
    found: dict[str, list[str]] = {}
    for cell in _cells(notebook):
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        exercises = set(re.findall(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)", source, flags=re.M))
        exercises.add(_answer_id(cell))
        for exercise in exercises - {None}:
            found.setdefault(exercise, []).append(source)
    return {exercise: "\n\n".join(sources) for exercise, sources in found.items()}


def read_answers(path: Path) -> dict[str, str] | str:
    """The answer cells of a notebook file, or a string saying why it could not be read."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return f"the notebook is {size / 2**20:.0f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB read for comparison"
        return answer_cells(json.loads(Path(path).read_bytes()))
    except (OSError, ValueError, RecursionError) as exc:
        return f"not a readable notebook ({exc.__class__.__name__})"


def compare_notebooks(
    submissions: Mapping[str, Path], solution: Path, release: Path, exercises: Sequence[str]
) -> Similarity:
    """``compare`` on notebook files: each student's submission, the solution and the released lab."""
    answers: dict[str, dict[str, str]] = {}
    unread: dict[str, str] = {}
    for student, path in submissions.items():
        got = read_answers(path)
        if isinstance(got, str):
            unread[student] = got
        else:
            answers[student] = got
    notebooks = {}
    for name, path in (("solution", solution), ("released lab", release)):
        try:
            notebooks[name] = json.loads(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read the {name} {path}: {exc}") from exc
    return compare(answers, answer_cells(notebooks["solution"]), exercises, given_grams(notebooks["released lab"]),
                   unread=unread)
