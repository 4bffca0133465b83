"""Disguises a student might put on a copied answer, to test that copies are still found.

Each takes an answer cell's source and returns a disguised one that computes the same thing:
renamed variables, another layout, comments, docstrings, type hints removed or added, and
independent statements swapped. They are written here, apart from ``interplab.grading.similarity``,
so that the tests do not use the normaliser to disguise what the normaliser must see through.
"""

from __future__ import annotations

import ast
import io
import tokenize

_NEW_NAMES = ("result", "tmp", "acc", "val", "thing", "data", "arr", "foo", "my_var", "out", "mat", "vec")


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(source).readline))


def _bound(source: str) -> list[str]:
    """Names the cell binds (variables, parameters, helpers), in order of appearance, but not the
    top-level functions: the check calls them by name, so a copier keeps those."""
    tree = ast.parse(source)
    graded = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    found: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found[node.id] = None
        elif isinstance(node, ast.arg):
            found[node.arg] = None
        elif isinstance(node, ast.FunctionDef) and node.name not in graded:
            found[node.name] = None
    return [name for name in found if name != "_"]


def rename(source: str, seed: int = 0) -> str:
    """Every variable, parameter and helper renamed; the layout and comments kept."""
    names = _bound(source)
    mapping = {old: f"{_NEW_NAMES[(i + seed) % len(_NEW_NAMES)]}_{i}" for i, old in enumerate(names)}
    lines = source.splitlines(keepends=True)
    tokens = _tokens(source)
    edits = []
    depth, in_def = 0, False
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.NAME and tok.string == "def":
            in_def = True
        elif tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.OP and tok.string == ":" and depth == 0:
            in_def = False
        if tok.type != tokenize.NAME or tok.string not in mapping:
            continue
        before = tokens[i - 1].string if i else ""
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        is_keyword_argument = depth > 0 and after == "=" and not in_def
        if before != "." and not is_keyword_argument:
            edits.append((tok.start, tok.end, mapping[tok.string]))
    for (row, col), (_, end), new in reversed(edits):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[end:]
    return "".join(lines)


def reformat(source: str) -> str:
    """Another layout: tokens re-spaced by ``tokenize.untokenize``, blank lines between statements."""
    spaced = tokenize.untokenize((tok.type, tok.string) for tok in _tokens(source))
    return "\n\n".join(line for line in spaced.splitlines() if line.strip())


def add_comments(source: str) -> str:
    """A comment line above every statement, and a note after every function header."""
    tree = ast.parse(source)
    starts = {node.lineno: node.col_offset for node in ast.walk(tree) if isinstance(node, ast.stmt)}
    out = []
    for number, line in enumerate(source.splitlines(), start=1):
        if number in starts:
            out.append(" " * starts[number] + f"# step {number}: do the next bit of the computation")
        out.append(line)
    return "\n".join(out)


def add_docstrings(source: str) -> str:
    """A docstring at the top of every function."""
    tree = ast.parse(source)
    firsts = {node.body[0].lineno: node.body[0].col_offset for node in ast.walk(tree)
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out = []
    for number, line in enumerate(source.splitlines(), start=1):
        if number in firsts:
            out.append(" " * firsts[number] + '"""Computes what the exercise asks for, carefully, step by step."""')
        out.append(line)
    return "\n".join(out)


class _Hints(ast.NodeTransformer):
    def __init__(self, add: bool):
        self.add = add

    def visit_arg(self, node):
        node.annotation = ast.Name("Tensor") if self.add and node.annotation is None else None if not self.add else node.annotation
        return node

    def visit_FunctionDef(self, node):
        node.returns = None if not self.add else node.returns or ast.Name("Tensor")
        return self.generic_visit(node)

    def visit_Lambda(self, node):  # a lambda's parameters take no annotations: only its body is visited
        node.body = self.visit(node.body)
        return node

    def visit_Assign(self, node):
        if self.add and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            return ast.AnnAssign(target=node.targets[0], annotation=ast.Name("Tensor"), value=node.value, simple=1)
        return node


def strip_hints(source: str) -> str:
    """Every annotation removed (the code is printed back by ``ast.unparse``)."""
    return ast.unparse(_Hints(add=False).visit(ast.parse(source)))


def add_hints(source: str) -> str:
    """Annotations on every parameter, return and simple assignment."""
    return ast.unparse(_Hints(add=True).visit(ast.parse(source)))


def _names(node: ast.AST, ctx: type) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _swap_independent(body: list[ast.stmt]) -> list[ast.stmt]:
    body = list(body)
    i = 0
    while i + 1 < len(body):
        a, b = body[i], body[i + 1]
        if isinstance(a, ast.Assign) and isinstance(b, ast.Assign):
            wa, wb = _names(a, ast.Store), _names(b, ast.Store)
            if not (wa & (_names(b, ast.Load) | wb) or wb & _names(a, ast.Load)):
                body[i], body[i + 1] = b, a
                i += 2
                continue
        i += 1
    return body


def reorder(source: str) -> str:
    """Adjacent assignments that do not depend on each other swapped."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for field in ("body", "orelse"):
            value = getattr(node, field, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                setattr(node, field, _swap_independent(value))
    return ast.unparse(tree)


#: Every disguise, by name; ``everything`` applies them all in turn.
DISGUISES = {
    "renamed": rename,
    "reformatted": reformat,
    "commented": add_comments,
    "docstrings": add_docstrings,
    "hints_stripped": strip_hints,
    "hints_added": add_hints,
    "reordered": reorder,
    "everything": lambda s: reformat(add_comments(add_docstrings(rename(add_hints(reorder(s)), seed=5)))),
}
