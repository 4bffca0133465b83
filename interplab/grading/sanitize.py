"""A graded notebook made safe to open in an instructor's browser.

The autograded notebook is what nbgrader's feedback HTML and the formgrader render, from the
Jupyter server's own origin. Everything in it that a student controls (outputs, markdown,
raw cells, attachments, metadata) could carry script: a ``<script>`` or ``<img onerror>`` in
HTML, an ``application/javascript`` or SVG output, a ``javascript:`` link in markdown, a
string where the templates expect a number (an image's ``width``), a raw cell marked as HTML.
So the graded notebook keeps only what renders as static content:

- outputs: text, PNG/JPEG/GIF images (checked to be base64), and HTML or markdown cleaned by
  an allow-list (bleach, which nbconvert uses too); scripts and styles are dropped with their
  contents, so an interactive figure (a circuitsvis attention pattern) keeps its static parts
  and a note that its scripts were removed; every other kind of output becomes a plain note;
- markdown cells: rendered the way nbconvert renders them and cleaned; a cell whose rendering
  was already clean is kept as written (so the lab's own text is untouched), any other is
  replaced by its clean HTML;
- raw cells lose their format (nbconvert would paste an HTML raw cell verbatim);
- metadata: cells keep only nbgrader's, images only a numeric width and height, the notebook
  only its kernel and language.

``interplab.grading.course`` also turns on nbconvert's own ``sanitize_html``, with this allow-list
(``clean_filter``), for whatever nbgrader renders with the course's configuration.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import bleach
import nbformat
from nbformat.v4 import new_output

TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt", "em",
        "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "mark", "ol", "p",
        "pre", "q", "s", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
        "thead", "tr", "u", "ul"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
PROTOCOLS = {"http", "https", "mailto", "data"}
IMAGES = ("image/png", "image/jpeg", "image/gif")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_DATA_IMAGE = re.compile(r"^\s*data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*$", re.IGNORECASE)
_SELF_CLOSING = re.compile(r"\s*/>")
#: Elements whose *contents* are code or markup, not text: removed whole before cleaning.
_ACTIVE = re.compile(r"<(script|style|template|iframe|object|embed|noscript|textarea|title|xmp|noembed|noframes|svg|math)"
                     r"\b.*?(</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL)
SCRIPTS_REMOVED = "<p><em>[interactive output: its scripts were removed by the grader]</em></p>"
REMOVED = "[output removed by the grader: it can only be shown as active content]"
#: Notebook metadata that nbgrader and nbconvert need; the rest (widget state, titles) goes.
_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def _attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "title") or (name == "id" and tag in _HEADINGS):  # headings: nbconvert's anchors
        return True
    if tag == "a":
        return name == "href" and not value.strip().lower().startswith("data:")
    if tag == "img":
        return name in ("alt", "width", "height") or (name == "src" and (
            _DATA_IMAGE.match(value) is not None or not value.strip().lower().startswith("data:")))
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan", "align")
    return False


def strip_active(text: str) -> str:
    """HTML without its scripts and the like (contents and all), a note where they were; not yet
    clean (``clean_html`` is), but small: what the notebook runner keeps of an interactive figure."""
    without, removed = _ACTIVE.subn("", text)
    return without + SCRIPTS_REMOVED if removed else without


def clean_html(text: str, max_chars: int | None = None) -> tuple[str, bool]:
    """``text`` with only static HTML left, and whether scripts (or the like) were removed.
    Markup still over ``max_chars`` once its scripts are gone is not parsed but cut."""
    without, removed = _ACTIVE.subn("", text)
    if max_chars is not None and len(without) > max_chars:
        return f"<p><em>[output cut: over {max_chars} characters of HTML]</em></p>", removed > 0
    cleaned = bleach.clean(without, tags=TAGS, attributes=_attribute, protocols=PROTOCOLS,
                           strip=True, strip_comments=True)
    return cleaned, removed > 0


def clean_filter(text: str) -> str:
    """nbconvert's ``clean_html`` filter with this allow-list: its own strips headings,
    paragraphs and images, which the lab's text and a student's feedback need."""
    return clean_html(str(text))[0]


def _render(markdown: str, attachments: dict | None = None) -> str:
    """Markdown as nbconvert's HTML exporter renders it (its ``markdown2html`` filter)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    return MarkdownWithMath(renderer=IPythonRenderer(escape=False, attachments=attachments or {})).render(markdown)


def clean_markdown(markdown: str, attachments: dict | None = None) -> str:
    """Markdown that renders only static HTML: as written if it already did, else its clean rendering."""
    if not attachments:
        return _clean_markdown(markdown, "{}")
    return _clean_markdown(markdown, json.dumps(attachments, sort_keys=True))


@functools.lru_cache(maxsize=4096)  # a class's notebooks share the lab's text: render each cell once
def _clean_markdown(markdown: str, attachments: str) -> str:
    rendered = _render(markdown, json.loads(attachments))
    cleaned, _ = clean_html(rendered)
    if cleaned == _SELF_CLOSING.sub(">", rendered):  # "<img ... />" is "<img ...>" in HTML
        return markdown
    # An HTML block in markdown ends at a blank line: keep the clean HTML one block.
    return "<div>\n" + re.sub(r"\n\s*\n", "\n", cleaned).strip() + "\n</div>"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def clean_output(output: dict, max_chars: int | None = None) -> nbformat.NotebookNode:
    """One output as static content (see the module's docstring); HTML over ``max_chars`` is cut."""
    kind = output.get("output_type")
    if kind == "stream":
        return new_output("stream", name="stderr" if output.get("name") == "stderr" else "stdout",
                          text=_text(output.get("text", "")))
    if kind == "error":
        traceback = output.get("traceback")
        return new_output("error", ename=_text(output.get("ename", ""))[:200], evalue=_text(output.get("evalue", "")),
                          traceback=[_text(line) for line in traceback] if isinstance(traceback, list) else [])
    if kind not in ("display_data", "execute_result"):
        return new_output("stream", name="stdout", text=REMOVED + "\n")
    data, metadata = {}, {}
    given = output.get("data") if isinstance(output.get("data"), dict) else {}
    given_metadata = output.get("metadata") if isinstance(output.get("metadata"), dict) else {}
    for mime, value in given.items():
        if mime == "text/plain":
            data[mime] = _text(value)
        elif mime in IMAGES and isinstance(value, str) and _BASE64.match(value):
            data[mime] = value
            size = given_metadata.get(mime) if isinstance(given_metadata.get(mime), dict) else {}
            kept = {k: size[k] for k in ("width", "height") if _count(size.get(k)) is not None}
            if kept:
                metadata[mime] = kept
        elif mime == "text/html":
            cleaned, removed = clean_html(_text(value), max_chars)
            data[mime] = cleaned + (SCRIPTS_REMOVED if removed else "")
        elif mime == "text/markdown":
            data[mime] = clean_markdown(_text(value))
    if not data:
        data["text/plain"] = REMOVED
    if kind == "execute_result":
        return new_output(kind, data=data, metadata=metadata, execution_count=_count(output.get("execution_count")))
    return new_output(kind, data=data, metadata=metadata)


def clean_cells(nb: nbformat.NotebookNode) -> None:
    """Make every cell and the notebook's metadata static (outputs: ``clean_output``)."""
    nb.metadata = nbformat.from_dict({k: nb.metadata[k] for k in _NOTEBOOK_METADATA if k in nb.metadata})
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict({k: v for k, v in cell.metadata.items() if k == "nbgrader"})
        if cell.cell_type == "markdown":
            attachments = cell.get("attachments")
            if isinstance(attachments, dict):
                cell.attachments = {
                    name: {mime: value for mime, value in files.items()
                           if mime in IMAGES and isinstance(value, str) and _BASE64.match(value)}
                    for name, files in attachments.items() if isinstance(files, dict)}
            cell.source = clean_markdown(cell.source, cell.get("attachments"))
        elif cell.cell_type == "code":
            cell.execution_count = _count(cell.get("execution_count"))
            cell.outputs = [clean_output(o) for o in cell.get("outputs", [])]
