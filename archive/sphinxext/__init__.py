"""Sphinx extension of the annotated side-by-side site of the 2012 AlexNet code.

The site is built offline from the release manifests (``archive.manifest.load_all``), the
fetched trees under ``original/<release>/`` and the port's ``Ports:``/``DIVERGES:`` lines
(``archive.xref.scan``/``check``). It generates, besides the MyST pages in ``docs/``:

==============================================  ==============================================
``releases/<release>/<path>.html``               a source page per release file; ``#L123`` and
                                                 ``#L10-L20`` anchors; annotations and the
                                                 porting code in the margin; the raw file is at
                                                 ``releases/<release>/<path>``
``releases/<release>/index.html``                the release's file tree, each file marked
                                                 same/changed/moved/added vs the other releases
``releases/index.html``                          the releases and their provenance
``versions/<path>.html``, ``versions/index.html`` side-by-side diffs of a file across releases
                                                 (``<path>`` = its path in its oldest release);
                                                 line anchors ``<release>-a<n>`` / ``<release>-b<n>``
``history/<path>.html``                          each function of the file across releases
                                                 (:mod:`history`), linked from the outline, the
                                                 function's first line and the versions pages
``history/functions.js``                         definitions → their function histories, for the
                                                 identifier panel (``archive-reading.js``)
``port/<module>.html``, ``port/index.html``      port modules (``port/layers/weight.py`` →
                                                 ``port/layers/weight.html``), ``#L<n>`` anchors
``coverage.html``                                share of each file cited by the port, annotated
``divergences.html``                             every ``DIVERGES:`` line of the port, then
                                                 every ``Port-only:`` line (a check it adds)
``identifiers.html`` (+ ``identifiers.js``)      identifier search over the code, ``?q=name``
``_ids/files.js``, ``_ids/<k>.js``               the identifier index (:mod:`idents`), loaded
                                                 when a reader clicks a name in a listing
``experiments/index.html``, ``experiments/<n>``  the experiment history of the 2012 ``layers/``
                                                 folder, a page per experiment (:mod:`experiment_pages`)
``revisions/<label>.html``, ``revisions/index``   a page per revision of the joined public history,
``revisions/new-in-2012.html``,                  the timeline, what 2012 added, and who wrote each
``provenance/<release>/<path>.json``             line (:mod:`revisions`; needs the histories)
==============================================  ==============================================

For MyST content:

* ``{src}`alexnet-2012/src/layer.cu:823-842``` or ``{src}`text <alexnet-2012/src/layer.cu:823>```
  links to source lines (``{src}`release/path``` to the page);
* ```` ```{annotation} alexnet-2012/src/layer.cu:823-842 ConvLayer::fpropActs ```` in documents
  under ``docs/annotations/`` puts its MyST body in the margin beside those lines;
* ``{site}`text <coverage.html>``` links to a generated page (path from the site root);
* ```` ```{release-table} ```` and ```` ```{experiment-results} 145 147 ```` tabulate the pinned
  releases and experiments' diary results (:mod:`tables`).

The build fails (exit status 2, each problem as ``file:line: message``) if a ``Ports:`` line, an
annotation or a ``{src}`` link points outside a file or away from the symbol it names, or if a
fetched original differs from its manifest. Configuration (paths relative to the conf dir):
``archive_manifests_dir``, ``archive_original_dir``, ``archive_root`` (the repository, for port
paths), ``archive_port_paths`` (default ``[<root>/port]``), ``archive_release_order`` (lineage,
oldest first), ``archive_fail_on_integrity`` (default True; False only warns, for drafting),
``archive_experiments_dir`` (default ``<archive_original_dir>/alexnet-2012/layers``),
``archive_history_snapshots`` (the releases joined to the history as one commit, and how each is
dated: ``{"alexnet-2012": "diaries"}``).
The theme ``archive`` (offline, light/dark, phone, print) ships with it.

Every module builds its HTML with :mod:`markup` (``html('<a href="{}">{}</a>', url, name)``), which
escapes each value for its place unless it is markup already: a file name or a reason cannot
inject markup, and a module cannot forget to escape.
"""
from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

from archive.sphinxext import experiment_pages, pages
from archive.sphinxext.annotations import setup_annotations
from archive.sphinxext.tables import setup_tables


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("archive_manifests_dir", "", "env", types=[str])
    app.add_config_value("archive_original_dir", "", "env", types=[str])
    app.add_config_value("archive_root", "", "env", types=[str])
    app.add_config_value("archive_port_paths", [], "env", types=[list])
    app.add_config_value("archive_release_order", [], "env", types=[list])
    app.add_config_value("archive_fail_on_integrity", True, "", types=[bool])
    app.add_config_value("archive_experiments_dir", "", "env", types=[str])
    app.add_config_value("archive_search_exclude", [], "env", types=[list])
    app.add_config_value("archive_compat_table", "compat/alexnet-2012.json", "env", types=[str])
    app.add_config_value("archive_start_here", "reading-order", "html", types=[str])
    app.add_config_value("archive_history_snapshots", {"alexnet-2012": "diaries"}, "env", types=[dict])
    app.add_html_theme("archive", str(pages.THEME))
    app.add_css_file("archive.css")
    app.add_js_file("archive.js", loading_method="defer")
    app.add_js_file("archive-idents.js", loading_method="defer")
    app.add_js_file("archive-origin.js", loading_method="defer")
    app.add_js_file("archive-reading.js", loading_method="defer")
    app.add_js_file("archive-sort.js", loading_method="defer")
    setup_annotations(app)
    setup_tables(app)
    app.connect("config-inited", experiment_pages.resolve_layers_dir)
    app.connect("builder-inited", pages.copy_static)
    app.connect("env-updated", pages.check_integrity)
    app.connect("html-collect-pages", pages.collect_pages)
    app.connect("build-finished", pages.check_site_links)
    app.connect("build-finished", pages.drop_empty_sources)
    app.connect("html-page-context", pages.start_here)
    app.setup_extension("archive.sphinxext.compat")
    app.setup_extension("archive.sphinxext.kernels")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
