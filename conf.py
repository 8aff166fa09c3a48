"""Sphinx configuration of the annotated site. Sources are in docs/; the site is built offline
(`make site`) by the extension archive.sphinxext with its own plain theme (no external fonts,
scripts or requests)."""
project = "AlexNet 2012, annotated"
author = "The AlexNet archive contributors"
copyright = "the contributors; original code © its authors (see each release's license)"

extensions = ["myst_parser", "archive.sphinxext"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist", "attrs_inline"]
myst_heading_anchors = 3

html_theme = "archive"
html_title = "AlexNet 2012, annotated"
html_static_path: list[str] = []
html_copy_source = False
html_show_sourcelink = False

# Releases in lineage order (oldest first): diffs compare each with the previous one.
archive_release_order = ["cuda-convnet-r561", "alexnet-2012", "cuda-convnet2"]
# Full-text search (Pagefind) leaves cuda-convnet2 out: its 1.3 MB of index would take the site past 100 MB.
archive_search_exclude = ["cuda-convnet2"]
