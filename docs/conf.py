"""Sphinx settings of the course site (`make site`, or `interplab site`).

The pages are staged by interplab.site: the front page it writes, the Markdown files of docs/,
and every lesson executed once on the CPU tier. MyST-NB renders the notebooks with their saved
outputs and never runs them again here.
"""

project = "interplab"
author = "the interplab authors"
copyright = "the interplab authors"

extensions = ["myst_nb"]
exclude_patterns = ["**.ipynb_checkpoints"]

# Notebooks arrive executed; rendering them must not need a kernel.
nb_execution_mode = "off"
# No ipywidgets in the lessons: don't load widget code from a CDN.
nb_ipywidgets_js = {}
# "$x$" and "$$...$$" as in the notebooks.
myst_enable_extensions = ["dollarmath", "amsmath"]
# Links between pages are written as links to their .ipynb/.md sources.
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "interplab"
html_theme_options = {"show_toc_level": 2, "use_download_button": True}
html_show_sourcelink = False
