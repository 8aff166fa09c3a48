"""archive.sphinxext.experiment_pages (and the tables and {site} role they are used with), built
with the whole extension on the test root and a synthetic ``layers/`` folder."""
from __future__ import annotations

import json

import pytest

from tests.archive.test_experiment_history import write_folder


@pytest.mark.sphinx("html", testroot="site", srcdir="experiment-pages")
def test_sphinx_pages(app_params, make_app):
    """The extension builds the index, one page per experiment, the tables and the {site} role."""
    args, kwargs = app_params
    root = src = kwargs["srcdir"]
    write_folder(root / "layers")
    with open(root / "conf.py", "a") as f:
        f.write("archive_experiments_dir = 'layers'\n")
    (root / "compat").mkdir()   # the compat table says what the port does with a def file
    (root / "compat" / "alexnet-2012.json").write_text(json.dumps({"release": "alexnet-2012", "rows": [
        {"cfg": "layers/layers-91.cfg", "parsed": False, "built": False, "ran": False,
         "reason": "a made-up reason of the table"},
        {"cfg": "layers/layers-94.cfg", "parsed": True, "built": True, "ran": True, "reason": None}]}))
    (src / "index.md").write_text(
        "# Test\n\n{site}`the timeline <experiments/index.html>`\n\n"
        "```{release-table}\n```\n\n```{experiment-results} 91 92\n:all-results:\n```\n\n"
        "```{toctree}\nsub/page\n```\n")
    (src / "sub").mkdir()
    (src / "sub" / "page.md").write_text("# Sub\n\n{site}`missing.html#x` {site}`r <releases/a/b.c.html#L3>`\n"
                                         "{site}`experiments/92.html`\n")
    app = make_app(*args, **kwargs)
    app.build()
    out, warnings = app.outdir, app.warning.getvalue()
    assert app.statuscode == 0
    # the two links to pages this test build does not have are reported, the others are not
    missing = [l for l in warnings.splitlines() if "no such page" in l]
    assert len(missing) == 2 and "missing.html" in missing[0] + missing[1]
    assert not any("experiments/" in l for l in missing)
    index = (out / "index.html").read_text()
    assert 'href="experiments/index.html"' in index
    sub = (out / "sub" / "page.html").read_text()
    assert 'href="../missing.html#x"' in sub and 'href="../releases/a/b.c.html#L3"' in sub
    assert "alexnet-2012" in index and "computerhistory/AlexNet-Source-Code" in index
    assert 'href="experiments/91.html"' in index and "40.66 / 18.21" in index
    assert "multiview" in index and "41.00 / 19.00" in index
    timeline = (out / "experiments" / "index.html").read_text()
    for stem in ("91", "91-half", "92", "93"):
        assert f'href="{stem}.html"' in timeline
        assert (out / "experiments" / f"{stem}.html").is_file()
    page = (out / "experiments" / "92.html").read_text()
    assert "Diff to #91-half" in page and "Diff to #91 " in page          # previous, and "like #91"
    assert "../releases/alexnet-2012/layers/layer-params-92.cfg.html#L5" in page
    assert "<svg" in page or 'class="exp-error"' in page                # a diagram, or the parser's error
    assert "none in the release" in (out / "experiments" / "93.html").read_text()
    # what the port parses comes from the compat table; the dates from one rule, stated
    assert "a made-up reason of the table" in page and "../compat.html" in page
    assert 'a made-up reason of the table">parse error</span>' in timeline
    assert "runs a training step on 1 " in timeline and "exp-date-rule" in timeline and "earliest" in timeline
    assert "started 2012-09-13, last checkpoint 2012-09-20" in (out / "experiments" / "91.html").read_text()
    # results over time: a point per experiment with a result (top-1 and top-5), linked; a sortable table
    chart = timeline[timeline.index('class="experiment-results"'):]
    chart = chart[:chart.index("</svg>")]
    assert chart.count("<a href=") == 2 and 'href="91.html"' in chart and "40.66 / 18.21 %" in chart
    assert '<table class="exp-table sortable">' in timeline and '<th data-type="num">top-1 %</th>' in timeline
    assert '<td class="num">40.66</td><td class="num">18.21</td>' in timeline
    assert "_static/archive-sort.js" in timeline


def test_pages_key_reads_the_parser_not_the_driver():
    """The pages' cache key covers the cfg parser's files (read off their imports), not the
    driver's: an edit of port/convnet.py or of a layer class leaves the pages cached."""
    from archive import ROOT
    from archive.sphinxext.experiment_pages import _parser_sources

    files = {p.relative_to(ROOT).as_posix() for p in _parser_sources()}
    assert {"port/__init__.py", "port/layer.py", "port/layer_def.py", "port/cfg_checks.py"} <= files
    assert not files & {"port/convnet.py", "port/gpumodel.py", "port/model.py"}
    assert not any(f.startswith(("port/layers/", "port/data/")) for f in files)
