"""The table directives of the MyST pages: ``{release-table}`` (the pinned releases, from their
manifests) and ``{experiment-results} 145 147 148`` (those experiments' diary results).
"""
from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from archive import manifest
from archive.sphinxext import experiment_pages
from archive.sphinxext.model import relative

logger = logging.getLogger(__name__)


class ReleaseTable(SphinxDirective):
    """The pinned releases, from their manifests; with ``:provenance:``, each manifest's
    provenance text as a column."""
    option_spec = {"provenance": directives.flag}

    def run(self):
        with_prov = "provenance" in self.options
        heads = ["release", "upstream @ commit", "commit date", "license", "files"]
        widths = [16, 30, 14, 30, 8]
        if with_prov:
            heads.append("what it is")
            widths.append(40)
        table = nodes.table(classes=["release-table"])
        tgroup = nodes.tgroup(cols=len(heads))
        table += tgroup
        for w in widths:
            tgroup += nodes.colspec(colwidth=w)
        head = nodes.thead()
        tgroup += head
        head += table_row(heads)
        body = nodes.tbody()
        tgroup += body
        for rid, m in manifest.load_all().items():
            up = nodes.paragraph()
            up += nodes.reference("", m.upstream.removeprefix("https://github.com/"),
                                  refuri=f"{m.upstream}/tree/{m.commit}")
            up += nodes.Text(f" @ {m.commit[:8]}")
            cells = [nodes.literal(rid, rid), up, m.commit_date[:10], m.license, str(len(m.files))]
            body += table_row(cells + ([m.provenance] if with_prov else []))
        return [table]


def table_row(cells) -> nodes.row:
    row = nodes.row()
    for c in cells:
        entry = nodes.entry()
        if isinstance(c, nodes.paragraph):
            entry += c
        elif isinstance(c, nodes.Node):
            p = nodes.paragraph()
            p += c
            entry += p
        else:
            entry += nodes.paragraph(text=str(c))
        row += entry
    return row


class ExperimentResults(SphinxDirective):
    """A table of the diary results of the experiments named as arguments."""
    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"all-results": directives.flag}

    def run(self):
        t = experiment_pages.timeline(self.config)
        if t is None:
            return [nodes.paragraph(text="(the release is not fetched: run `make original`)")]
        table = nodes.table(classes=["experiment-results"])
        tgroup = nodes.tgroup(cols=5)
        table += tgroup
        for w in (10, 12, 40, 22, 16):
            tgroup += nodes.colspec(colwidth=w)
        head = nodes.thead()
        tgroup += head
        head += table_row(["run", "started", "the diary says", "result (label)", "top-1 / top-5 %"])
        body = nodes.tbody()
        tgroup += body
        for stem in self.arguments[0].split():
            e = t.get(stem)
            if e is None:
                where = experiment_pages.layers_dir(self.config)
                logger.warning(f"experiment-results: no experiment {stem!r} in {where}",
                               location=self.get_location())
                continue
            results = e.diary.results if "all-results" in self.options else e.diary.results[:1]
            link = nodes.paragraph()
            link += nodes.reference("", f"#{stem}", refuri=relative(self.env.docname, f"experiments/{stem}"),
                                    internal=True)
            title = e.diary.title[1] if e.diary.title else ""
            for i, r in enumerate(results or [None]):
                body += table_row([link.deepcopy() if i == 0 else "", e.diary.start_date or "" if i == 0 else "",
                                   title if i == 0 else "", (r.label or "—") if r else "no result recorded",
                                   experiment_pages.result_text(r)])
        return [table]


def setup_tables(app: Sphinx) -> None:
    app.add_directive("release-table", ReleaseTable)
    app.add_directive("experiment-results", ExperimentResults)
