"""Stand-off annotations: the ``{annotation}`` directive, the ``{src}`` role, and their HTML.

An annotation is written in a MyST document under ``docs/annotations/``::

    ```{annotation} alexnet-2012/src/layer.cu:823-842 ConvLayer::fpropActs
    Commentary in MyST...
    ```

The argument is ``<release>/<path>:<first>-<last>`` (or ``:<line>``) and an optional symbol,
read by the same parser as ``Ports:`` lines. The annotation documents are built like any other
page (each annotation there links to its lines), and each annotation's rendered body is also
shown in the margin of the source page, beside its lines; the original file is never edited.

The ``{src}`` role links prose to release lines: ``{src}`alexnet-2012/src/layer.cu:823-842```
or ``{src}`text <alexnet-2012/src/layer.cu:823-842>```; ``{src}`alexnet-2012/src/layer.cu```
links to the page. Where the lines point is checked by :mod:`integrity`, not here. The
``{site}`` role, ``{site}`text <experiments/index.html>``` or ``{site}`coverage.html```, links to a
generated page outside the toctree, the path given from the site root; a target the build did
not write is reported when the build ends (:func:`pages.check_site_links`).

This module stores what it reads in the ``archive`` domain (so parallel reads merge and
changed documents purge cleanly); it does not draw source pages.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.domains import Domain
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from archive.sphinxext.model import (Annotation, line_fragment, page_of_source, parse_target,
                                     relative)

ANNOTATION_CLASS = "archive-annotation"
BODY_CLASS = "archive-annotation-body"
_ROLE_TEXT = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_PATH_ONLY = re.compile(r"^(?P<release>[A-Za-z0-9_.-]+)/(?P<path>[^\s:]+)$")


class ArchiveDomain(Domain):
    """Holds, per document, the annotations and ``{src}`` links it contains.

    ``annotations``: docname → list of :class:`Annotation`; ``links``: docname → list of
    ``(source, line, target text, parsed target or None)``; ``site_links``: docname → list of
    ``(line, target)`` of its ``{site}`` links.
    """
    name = "archive"
    label = "AlexNet archive"
    initial_data: dict[str, Any] = {"annotations": {}, "links": {}, "site_links": {}}
    KEYS = ("annotations", "links", "site_links")

    def clear_doc(self, docname: str) -> None:
        for key in self.KEYS:
            self.data[key].pop(docname, None)

    def merge_domaindata(self, docnames: set[str], otherdata: dict[str, Any]) -> None:
        for key in self.KEYS:
            for docname, items in otherdata[key].items():
                if docname in docnames:
                    self.data[key][docname] = items

    def resolve_any_xref(self, env, fromdocname, builder, target, node, contnode):  # noqa: ANN001
        return []

    def all_annotations(self) -> list[Annotation]:
        return [a for doc in sorted(self.data["annotations"]) for a in self.data["annotations"][doc]]

    def all_links(self) -> list[tuple[str, int, str, tuple | None]]:
        return [x for doc in sorted(self.data["links"]) for x in self.data["links"][doc]]

    def all_site_links(self) -> list[tuple[str, int, str]]:
        """(docname, line, target) of every ``{site}`` link."""
        return [(doc, *x) for doc in sorted(self.data["site_links"]) for x in self.data["site_links"][doc]]


class AnnotationDirective(SphinxDirective):
    """``{annotation} <release>/<path>:<first>-<last> [Symbol]`` followed by MyST commentary."""
    required_arguments = 1
    final_argument_whitespace = True
    has_content = True

    def run(self) -> list[nodes.Node]:
        text = self.arguments[0]
        source, lineno = self.get_source_info()
        domain: ArchiveDomain = self.env.get_domain("archive")  # type: ignore[assignment]
        parsed = parse_target(text)
        docname = self.env.docname
        if parsed is None:
            domain.data["links"].setdefault(docname, []).append((source, lineno, text, None))
            return []
        release, path, first, last, symbol = parsed
        node_id = nodes.make_id(f"annotation-{release}-{path}-{first}-{last}")
        while node_id in self.state.document.ids:
            node_id += "-x"
        ann = Annotation(docname, source, lineno, node_id, release, path, first, last, symbol)
        domain.data["annotations"].setdefault(docname, []).append(ann)

        box = nodes.container(classes=[ANNOTATION_CLASS], ids=[node_id])
        head = nodes.paragraph(classes=["archive-annotation-head"])
        where = f"{release}/{path}:{first}" + (f"-{last}" if last != first else "")
        head += nodes.reference("", where, refuri=relative(
            docname, page_of_source(release, path), line_fragment(first, last)),
            classes=["archive-src"])
        if symbol:
            head += nodes.Text(" ")
            head += nodes.literal(symbol, symbol)
        body = nodes.container(classes=[BODY_CLASS])
        body += self.parse_content_to_nodes()
        box += head
        box += body
        self.set_source_info(box)
        return [box]


def src_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
             options: dict | None = None, content: list | None = None):
    """``{src}`release/path:first-last``` or ``{src}`title <release/path:first-last>```."""
    env = inliner.document.settings.env
    m = _ROLE_TEXT.match(text)
    title, target = (m["title"], m["target"]) if m else ("", text)
    target = target.strip()
    parsed = parse_target(target)
    frag = ""
    if parsed is not None:
        release, path, first, last, _ = parsed
        frag = line_fragment(first, last)
    elif (pm := _PATH_ONLY.match(target)):
        release, path = pm["release"], pm["path"]
        parsed = (release, path, 0, 0, "")
    source = env.doc2path(env.docname)
    links = env.get_domain("archive").data["links"].setdefault(env.docname, [])
    links.append((str(source), lineno, target, parsed))
    if parsed is None:
        return [nodes.literal(rawtext, text)], []
    uri = relative(env.docname, page_of_source(release, path), frag)
    return [nodes.reference(rawtext, title or target, refuri=uri, classes=["archive-src"])], []


def site_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
              options: dict | None = None, content: list | None = None):
    """``{site}`text <path.html#frag>``` or ``{site}`path.html```: a link to a generated page,
    the path given from the site root, made relative to the current page."""
    env = inliner.document.settings.env
    m = _ROLE_TEXT.match(text)
    label, target = (m["title"].strip(), m["target"].strip()) if m else (text.strip(), text.strip())
    env.get_domain("archive").data["site_links"].setdefault(env.docname, []).append((lineno, target))
    path, _, frag = target.partition("#")
    url = posixpath.relpath(path, posixpath.dirname(env.docname) or ".") + (f"#{frag}" if frag else "")
    return [nodes.reference(rawtext, label or target, refuri=url, internal=True)], []


_URL_ATTR = re.compile(r'(?P<attr>\b(?:href|src))="(?P<url>[^"]*)"')


def rebase_urls(fragment: str, from_page: str, to_page: str) -> str:
    """Rewrite the relative URLs of HTML written for ``from_page`` so they work on ``to_page``."""
    from_dir = posixpath.dirname(from_page)
    to_dir = posixpath.dirname(to_page) or "."

    def fix(m: re.Match) -> str:
        url = m["url"]
        if not url or url.startswith(("#", "/", "data:")) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
            if url.startswith("#"):
                url = posixpath.relpath(from_page + ".html", to_dir) + url
            return f'{m["attr"]}="{url}"'
        path, sep, frag = url.partition("#")
        target = posixpath.normpath(posixpath.join(from_dir, path))
        return f'{m["attr"]}="{posixpath.relpath(target, to_dir)}{sep}{frag}"'

    return _URL_ATTR.sub(fix, fragment)


def rendered_bodies(app: Sphinx) -> dict[str, str]:
    """``docname#node id`` → the annotation's body as HTML, with URLs relative to the output root
    (as if written for a page at the root; :func:`rebase_urls` moves them to a page)."""
    domain: ArchiveDomain = app.env.get_domain("archive")  # type: ignore[assignment]
    out: dict[str, str] = {}
    for docname in sorted(domain.data["annotations"]):
        if docname not in app.env.all_docs:
            continue
        with logging.suppress_logging():  # its warnings were shown when it was written
            doctree = app.env.get_and_resolve_doctree(docname, app.builder, tags=app.tags)
        for box in doctree.findall(nodes.container):
            if ANNOTATION_CLASS not in box["classes"] or not box["ids"]:
                continue
            for body in box.children:
                if isinstance(body, nodes.container) and BODY_CLASS in body["classes"]:
                    html = app.builder.render_partial(body.deepcopy())["fragment"]
                    out[f"{docname}#{box['ids'][0]}"] = rebase_urls(html, docname, "index")
    return out


def mark_orphans(app: Sphinx, env: Any) -> None:
    """Annotation documents are reached from source pages, not from a toctree."""
    for docname in env.all_docs:
        if docname.startswith("annotations/"):
            env.metadata[docname]["orphan"] = True


def setup_annotations(app: Sphinx) -> None:
    app.add_domain(ArchiveDomain)
    app.add_directive("annotation", AnnotationDirective)
    app.add_role("src", src_role)
    app.add_role("site", site_role)
    app.connect("env-updated", mark_orphans)
