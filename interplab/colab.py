"""Where Colab installs the course from, and the two places every notebook says it.

The course's home is one setting, ``[tool.interplab.colab]`` in ``pyproject.toml``::

    repository = "interplab/interplab"   # GitHub owner/name that hosts the course
    branch = "main"
    # install = "interplab==0.1.0"       # optional: any pip requirement to install instead

``interplab build`` stamps it into each notebook's Colab badge (first Markdown cell) and
set-up cell (first code cell), so an instructor who hosts a fork changes the setting,
rebuilds, and every lesson, solution and lab opens and installs from the fork.

The set-up cell pins Colab's PyTorch to the version already installed before it installs the
course: pip then keeps it or fails, and never swaps a multi-GB CUDA build for another.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The line that marks a notebook's set-up cell; it does nothing outside Colab.
MARKER = 'if "google.colab" in sys.modules:'
#: The pin file the set-up cell writes: Colab's own torch, to keep.
PIN_FILE = "/tmp/interplab-colab-pins.txt"
BADGE_URL = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]+")


@dataclass(frozen=True)
class Source:
    """The course's published home."""

    repository: str
    branch: str
    install: str | None = None

    @classmethod
    def read(cls, root: Path) -> "Source":
        """The setting in ``root/pyproject.toml``, with errors that say what to write."""
        pyproject = root / "pyproject.toml"
        setting = tomllib.loads(pyproject.read_text()).get("tool", {}).get("interplab", {}).get("colab")
        if not setting or "repository" not in setting:
            raise ValueError(
                f"{pyproject} has no [tool.interplab.colab] repository: add e.g.\n"
                '[tool.interplab.colab]\nrepository = "OWNER/NAME"   # the GitHub repository hosting the course\n'
                'branch = "main"'
            )
        repository = setting["repository"].strip().strip("/")
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
            raise ValueError(f"[tool.interplab.colab] repository = {repository!r} is not a GitHub OWNER/NAME")
        return cls(repository, setting.get("branch", "main"), setting.get("install"))

    @property
    def requirement(self) -> str:
        """What pip installs on Colab."""
        return self.install or f"interplab @ git+https://github.com/{self.repository}@{self.branch}"

    def badge_url(self, notebook: str) -> str:
        """The Colab link that opens ``notebook`` (a path in the repository) from this source."""
        return f"https://colab.research.google.com/github/{self.repository}/blob/{self.branch}/{notebook}"

    def setup_cell(self) -> str:
        """The set-up cell's source: install the course on Colab, keeping Colab's torch."""
        return "\n".join([
            "# Set-up. On Colab this installs the course and keeps Colab's own PyTorch (pinned to the",
            "# version installed, never replaced); on your own machine `make lab` installed everything.",
            "import sys",
            "",
            MARKER,
            "    from importlib.metadata import version",
            "",
            f'    open("{PIN_FILE}", "w").write(f"torch=={{version(\'torch\')}}\\n")',
            f'    %pip install --quiet --constraint {PIN_FILE} "{self.requirement}"',
        ])


def is_setup_cell(source: str) -> bool:
    return MARKER in source


def stamp(nb, notebook: str, source: Source) -> bool:
    """Write ``source`` into ``nb``'s badge (pointing at ``notebook``) and set-up cell, in place.

    Returns whether anything changed. A notebook without a badge or a set-up cell is an error
    that says what to add, so a new notebook cannot reach students without them.
    """
    first_markdown = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_markdown is None or not BADGE_URL.search(first_markdown.source):
        raise ValueError(
            f"{notebook}: its first Markdown cell needs a Colab badge, e.g. "
            "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            "(https://colab.research.google.com/github/OWNER/NAME/blob/main/PATH); `interplab build` fills in the link"
        )
    setup = next((c for c in nb.cells if c.cell_type == "code"), None)
    if setup is None or not is_setup_cell(setup.source):
        raise ValueError(
            f"{notebook}: its first code cell must be the Colab set-up cell (containing {MARKER!r}); "
            "copy it from any lesson and `interplab build` fills it in"
        )
    badge = BADGE_URL.sub(source.badge_url(notebook), first_markdown.source)
    changed = (badge, source.setup_cell()) != (first_markdown.source, setup.source)
    first_markdown.source, setup.source = badge, source.setup_cell()
    return changed
