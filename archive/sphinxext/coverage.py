"""Coverage of the releases: per file, the share of its lines cited by the port (``Ports:``
ranges) and the share annotated, and the site-wide table (``coverage.html``).

A line counts once however many ranges cover it. Binary files (images) count as files without lines.
"""
from __future__ import annotations

from dataclasses import dataclass

from archive.sphinxext.markup import html, join
from archive.sphinxext.model import Site, page_of_source, relative


@dataclass(frozen=True)
class FileCoverage:
    lines: int
    cited: int
    annotated: int

    @property
    def cited_share(self) -> float:
        return self.cited / self.lines if self.lines else 0.0

    @property
    def annotated_share(self) -> float:
        return self.annotated / self.lines if self.lines else 0.0


def _covered(spans: list[tuple[int, int]], nlines: int) -> int:
    seen: set[int] = set()
    for first, last in spans:
        seen.update(range(max(first, 1), min(last, nlines) + 1))
    return len(seen)


def compute(site: Site) -> dict[tuple[str, str], FileCoverage]:
    out = {}
    for release, man in site.manifests.items():
        for e in man.files.values():
            n = 0 if site.is_binary(release, e.path) else e.lines
            refs = site.refs_by_file.get((release, e.path), [])
            anns = site.annotations_by_file.get((release, e.path), [])
            out[(release, e.path)] = FileCoverage(
                n, _covered([(r.first, r.last) for r in refs], n),
                _covered([(a.first, a.last) for a in anns], n))
    return out


def _bar(share: float, cls: str) -> str:
    return html('<meter class="{}" min="0" max="1" value="{:.4f}"></meter> {:.1%}', cls, share, share)


def coverage_page(site: Site, cov: dict[tuple[str, str], FileCoverage]) -> tuple[str, str]:
    page = "coverage"
    summary = []
    rows = []
    for release in site.order:
        files = [(p, c) for (r, p), c in cov.items() if r == release]
        lines = sum(c.lines for _, c in files)
        cited = sum(c.cited for _, c in files)
        ann = sum(c.annotated for _, c in files)
        touched = sum(1 for _, c in files if c.cited or c.annotated)
        summary.append(html('<tr><td><a href="releases/{}/index.html">{}</a></td>'
                            '<td class="num">{}</td><td class="num">{}</td>'
                            '<td class="num" data-cited="{}">{}</td><td>{}</td>'
                            '<td class="num" data-annotated="{}">{}</td><td>{}</td>'
                            '<td class="num">{}</td></tr>',
                            release, release, len(files), lines, cited, cited,
                            _bar(cited / lines if lines else 0, "pc"), ann, ann,
                            _bar(ann / lines if lines else 0, "an"), touched))
        for path, c in sorted(files):
            if not c.lines:
                continue
            rows.append(html('<tr class="{}">'
                             '<td>{}</td><td class="path"><a href="{}">'
                             '{}</a></td><td class="num">{}</td>'
                             '<td class="num">{}</td><td>{}</td>'
                             '<td class="num">{}</td><td>{}</td></tr>',
                             "touched" if c.cited or c.annotated else "untouched", release,
                             relative(page, page_of_source(release, path)), path, c.lines, c.cited,
                             _bar(c.cited_share, "pc"), c.annotated, _bar(c.annotated_share, "an")))
    body = (html('<h1>Coverage</h1><p>For every release file: how many of its lines the port cites in '
                 '<code>Ports:</code> lines, and how many are annotated. A line is counted once however '
                 'many ranges cover it.</p>'
                 '<div class="table-wrap"><table class="files summary"><thead><tr><th>release</th><th>files</th>'
                 '<th>lines</th><th colspan="2">cited by the port</th><th colspan="2">annotated</th>'
                 '<th>files touched</th></tr></thead><tbody>{}</tbody></table></div>'
                 '<h2>Per file</h2><div class="table-wrap"><table class="files coverage"><thead><tr><th>release</th>'
                 '<th>file</th><th>lines</th><th colspan="2">cited by the port</th><th colspan="2">annotated</th>'
                 '</tr></thead><tbody>{}</tbody></table></div>', join(summary), join(rows)))
    return "Coverage", body
