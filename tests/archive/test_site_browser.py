"""The site in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright, serving the site of the test root ``tests/archive/sphinxext/roots/test-site`` over a
loopback HTTP server.

Follows a Ports link from a source page to the port and back, checks the target lines are
highlighted, that margins stand beside the code at desktop width and below it at phone width
(bounding boxes), and saves screenshots under ``<tmp>/screenshots/`` (and under
``$ARCHIVE_SCREENSHOTS`` when set). Skips only when Chromium cannot be launched.
"""
from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from tests.archive.sphinxext.siteroot import build, copy_site

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    root = copy_site(tmp_path_factory.mktemp("browser-site") / "site")
    build(root)
    handler = functools.partial(_Quiet, directory=str(root / "_build" / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure means: no browser here
            pytest.skip(f"Chromium cannot be launched: {exc}")
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path) -> list[Path]:
    dirs = [tmp_path / "screenshots"]
    if os.environ.get("ARCHIVE_SCREENSHOTS"):
        dirs.append(Path(os.environ["ARCHIVE_SCREENSHOTS"]))
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def snap(page, dirs: list[Path], name: str, full: bool = True) -> None:
    for d in dirs:
        page.screenshot(path=str(d / name), full_page=full)
        assert (d / name).stat().st_size > 1000


def highlighted(page) -> list[str]:
    return page.eval_on_selector_all(".ln.hl", "els => els.map(e => e.id)")


def test_ports_link_there_and_back(browser, site_url, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{site_url}/releases/rel-a/src/kern.cu.html")
    snap(page, shots, "source-desktop.png")
    page.click("a.to-port")
    page.wait_for_url("**/port/mod.html#L9-L14")
    assert highlighted(page) == [f"L{n}" for n in range(9, 15)]
    snap(page, shots, "port-desktop.png")
    page.click("a.to-src >> nth=0")
    page.wait_for_url("**/releases/rel-a/src/kern.cu.html#L3-L7")
    assert highlighted(page) == [f"L{n}" for n in range(3, 8)]
    assert page.evaluate("document.querySelector('#L3').getBoundingClientRect().top") < 900
    swhid = page.text_content("code.swhid")
    assert swhid.endswith(";lines=3-7")
    assert all(u.startswith(site_url) for u in requests), [u for u in requests if not u.startswith(site_url)]
    page.close()


def test_shift_click_selects_a_range(browser, site_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site_url}/releases/rel-a/src/kern.cu.html")
    page.click("#L2 a.lno")
    page.click("#L4 a.lno", modifiers=["Shift"])
    assert page.url.endswith("#L2-L4")
    assert highlighted(page) == ["L2", "L3", "L4"]
    page.close()


def boxes(page):
    seg = ".seg.has-notes"
    code = page.locator(f"{seg} > .codecol").first.bounding_box()
    margin = page.locator(f"{seg} > .margin").first.bounding_box()
    return code, margin


def test_margin_beside_on_desktop_below_on_phone(browser, site_url, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site_url}/releases/rel-a/src/kern.cu.html")
    code, margin = boxes(page)
    assert margin["x"] >= code["x"] + code["width"] - 1  # to the right
    assert margin["y"] < code["y"] + code["height"]      # on the same row
    page.close()
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                             is_mobile=True, has_touch=True)
    phone.goto(f"{site_url}/releases/rel-a/src/kern.cu.html")
    code, margin = boxes(phone)
    assert margin["y"] >= code["y"] + code["height"] - 1  # stacked below
    assert margin["width"] <= 390
    assert phone.evaluate("document.documentElement.scrollWidth") <= 391  # no sideways page scroll
    snap(phone, shots, "source-phone.png")
    phone.close()


def test_diff_dark_and_search(browser, site_url, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    page.goto(f"{site_url}/versions/src/kern.cu.html")
    assert page.locator("td.t.ins").count() >= 1 and page.locator("td.t.del").count() >= 1
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg != "rgb(253, 253, 251)"  # the dark palette applies
    snap(page, shots, "diff-dark.png")
    page.goto(f"{site_url}/identifiers.html?q=fpropActs")
    page.wait_for_selector("#idres .hit .def a")
    names = page.eval_on_selector_all("#idres .hit > summary > code", "els => els.map(e => e.textContent)")
    assert names[:2] == ["fpropActs", "fprop_acts"]  # the port's spelling of the same name comes next
    link = page.locator("#idres .def a").first
    assert link.text_content() == "rel-a/src/kern.cu:3"
    link.click()
    page.wait_for_url("**/releases/rel-a/src/kern.cu.html#L3")
    assert highlighted(page) == ["L3"]
    page.close()


def test_escaped_html_renders_as_text(browser, site_url):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{site_url}/releases/rel-a/page.html.html")
    assert "<script>alert(1)</script>" in page.text_content("pre.code")
    assert page.locator("pre.code b").count() == 0
    assert dialogs == []
    page.close()


@pytest.mark.slow
@pytest.mark.xdist_group("real_site")
def test_real_site_deep_link_and_port_pairing(browser, real_site):
    """The real site: a deep link into layer.cu lands on its range, and its port link goes to
    the port page and back, with no request leaving the local server."""
    handler = functools.partial(_Quiet, directory=str(real_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{url}/releases/alexnet-2012/src/layer.cu.html#L823-L842")
        assert highlighted(page) == [f"L{n}" for n in range(823, 843)]
        top = page.evaluate("document.getElementById('L823').getBoundingClientRect().top")
        assert -2 <= top < 900  # scrollIntoView(start) leaves a sub-pixel offset
        port = page.locator("a.to-port").first
        target = port.get_attribute("href")
        assert "/port/" in f"/{target}" and "#L" in target
        port.click()
        page.wait_for_url("**/port/**")
        back = page.locator("a.to-src[href*='alexnet-2012']").first
        back.click()
        page.wait_for_url("**/releases/alexnet-2012/**#L*")
        assert highlighted(page)
        assert all(u.startswith(url) for u in requests), [u for u in requests if not u.startswith(url)]
        page.close()
    finally:
        server.shutdown()


def test_a_huge_line_range_is_clamped_to_the_file(browser, site_url):
    """``#L1-L999999999`` made the page script loop a billion times; it is clamped to the file."""
    page = browser.new_page()
    page.goto(f"{site_url}/releases/rel-a/src/kern.cu.html#L2-L999999999", timeout=20000)
    n = page.evaluate("document.querySelectorAll(\".ln[id^='L']\").length")
    assert highlighted(page) == [f"L{i}" for i in range(2, n + 1)]
    assert page.text_content("code.swhid").endswith(f";lines=2-{n}")
    page.close()


def test_deep_links_land_with_their_port_box(browser, site_url, shots):
    """Cold loads of a line far below lazily laid-out blocks land on it, each time, with the box
    of the port function beside it (the function ports two far-apart ranges: a box at each)."""
    for first, last in [(2800, 2820), (40, 60), (2800, 2820)]:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{site_url}/releases/rel-b/src2/long.cu.html#L{first}-L{last}", wait_until="load")
        page.wait_for_timeout(200)
        top, box_top, box_bottom = page.evaluate("""([f, l]) => {
            const box = [...document.querySelectorAll('.note.port')]
                .find(e => e.dataset.ranges.split(' ').includes(f + '-' + l)).getBoundingClientRect();
            return [document.getElementById('L' + f).getBoundingClientRect().top, box.top, box.bottom];
        }""", [first, last])
        assert -2 <= top <= 40, (first, top)
        assert box_top < 900 and box_bottom > 0, (first, box_top, box_bottom)
        if first == 2800:
            snap(page, shots, "deep-link.png", full=False)
            page.mouse.wheel(0, 250)  # scrolling within the range: the box stays beside it
            page.wait_for_timeout(100)
            box = page.evaluate("""() => { const b = [...document.querySelectorAll('.note.port')]
                .find(e => e.dataset.ranges === '2800-2820').getBoundingClientRect(); return [b.top, b.bottom]; }""")
            assert box[0] < 900 and box[1] > 100, box  # still beside the range's lines in view
        page.close()


PAGE_KINDS = ["index.html", "releases/rel-a/src/kern.cu.html", "releases/rel-b/src2/long.cu.html",
              "port/mod.html", "versions/src/kern.cu.html", "releases/rel-a/index.html", "releases/index.html",
              "versions/index.html", "coverage.html", "divergences.html", "port/index.html",
              "identifiers.html?q=fpropActs", "annotations/notes.html"]


def test_phone_width_on_every_page_kind(browser, site_url):
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    wide = {}
    for name in PAGE_KINDS:
        phone.goto(f"{site_url}/{name}", wait_until="load")
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > 391:
            wide[name] = width
    assert wide == {}
    phone.close()


def test_long_lines_wrap_in_reach(browser, site_url):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{site_url}/releases/rel-b/src2/long.cu.html#L3001", wait_until="load")
    line = page.evaluate("""() => { const l = document.getElementById('L3001'), c = l.closest('.codecol');
        return [l.getBoundingClientRect().right, c.getBoundingClientRect().right, c.scrollWidth - c.clientWidth,
                l.getBoundingClientRect().height]; }""")
    right, col_right, overflow, height = line
    assert right <= col_right + 1 and overflow <= 1  # nothing beyond the column, no sideways scroll
    assert height > 30  # it wrapped onto several rows
    page.close()


def test_identifier_click_to_definition_and_back(browser, site_url, shots):
    """A name in a listing is a link: one click opens its definitions and references (loading
    one shard of the index, nothing before), one more goes to the definition, Back returns."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    loaded: list[str] = []
    page.on("request", lambda r: loaded.append(r.url))
    page.goto(f"{site_url}/releases/rel-b/src2/kern.cu.html", wait_until="load")
    assert not [u for u in loaded if "/_ids/" in u or u.endswith("identifiers.js")]  # nothing until asked
    token = page.locator("#L3 a.nf")  # "Layer::fpropActs": a click on its second half
    box = token.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 4, box["y"] + box["height"] / 2)
    page.wait_for_selector("#xref-panel .def a")
    defs = page.eval_on_selector_all("#xref-panel .def a", "els => els.map(e => e.textContent)")
    assert "rel-a/src/kern.cu:3" in defs and "rel-b/src2/kern.cu:3" in defs
    groups = page.eval_on_selector_all("#xref-panel .rg h4", "els => els.map(e => e.textContent)")
    assert groups[:2] == ["rel-a", "rel-b"]
    assert "fpropActs" in page.text_content("#xref-panel .refs code")  # a line of context
    assert len([u for u in loaded if "/_ids/" in u]) == 2  # files.js and one shard
    snap(page, shots, "identifier-panel.png", full=False)
    page.locator("#xref-panel .def a", has_text="rel-a/src/kern.cu:3").click()
    page.wait_for_url("**/releases/rel-a/src/kern.cu.html#L3")
    assert highlighted(page) == ["L3"]
    page.go_back()  # to the page with its panel: the click put the identifier in the address
    page.wait_for_url("**/releases/rel-b/src2/kern.cu.html#i:fpropActs")
    page.wait_for_selector("#xref-panel .def a")
    page.goto(f"{site_url}/releases/rel-a/layers/net.cfg.html", wait_until="load")
    page.locator("#L2 span", has_text="conv").first.click()  # type=conv: the class that reads it
    page.wait_for_selector("#xref-panel .def a")
    assert "reads type" in page.text_content("#xref-panel .defs")
    assert "type=conv" in page.text_content("#xref-panel")  # the cfg's namespace, not the code's conv
    page.close()


def test_identifiers_are_links_with_their_own_url(browser, site_url, shots):
    """Issue 22 item 1: a name is a link. Tab reaches it and Enter opens its panel; once pointed
    at, its href is the identifier's URL (what a new tab or "copy link" gets), which opened in a
    fresh page opens the panel; the click puts it in the address; the token keeps its colour."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site_url}/releases/rel-b/src2/kern.cu.html", wait_until="load")
    call = page.locator("#L5 a", has_text="getActs")  # a method call
    assert call.get_attribute("href") == ""  # the page itself until pointed at: no weight added
    assert call.evaluate("a => getComputedStyle(a).textDecorationLine") == "none"
    colours = page.evaluate("""() => { const a = document.querySelector('#L3 a.nf');
        return [getComputedStyle(a).color, getComputedStyle(a.closest('pre')).color]; }""")
    assert colours[0] != colours[1]  # Pygments' .nf colour, not the link colour or plain text
    assert call.evaluate("a => getComputedStyle(a).color") == colours[1]  # a plain name: the code's colour
    page.locator("#L5 a.lno").focus()  # the line number just before it; Tab goes on into the code
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "getActs":
            break
    assert page.evaluate("document.activeElement.tagName") == "A"
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#i:getActs"  # focused: its URL
    page.keyboard.press("Enter")
    page.wait_for_selector("#xref-panel h3")
    assert page.text_content("#xref-panel h3") == "getActs"
    assert page.url.endswith("/releases/rel-b/src2/kern.cu.html#i:getActs")
    snap(page, shots, "identifier-focus.png", full=False)
    page.keyboard.press("Escape")
    assert page.is_hidden("#xref-panel") and "#i:" not in page.url
    token = page.locator("#L3 a.nf")  # "Layer::fpropActs": pointed at on its second half
    box = token.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 4, box["y"] + box["height"] / 2)
    href = token.get_attribute("href")
    assert href == "#i:fpropActs"
    assert page.evaluate("document.querySelector('#L3 a.nf').href") == f"{site_url}/releases/rel-b/src2/kern.cu.html#i:fpropActs"
    fresh = browser.new_page(viewport={"width": 1280, "height": 900})  # a new tab, a shared link
    fresh.goto(f"{site_url}/releases/rel-b/src2/kern.cu.html{href}", wait_until="load")
    fresh.wait_for_selector("#xref-panel .def a")
    assert fresh.text_content("#xref-panel h3") == "fpropActs"
    assert "rel-a/src/kern.cu:3" in fresh.eval_on_selector_all("#xref-panel .def a", "els => els.map(e => e.textContent)")
    fresh.goto(f"{site_url}/releases/rel-a/layers/net.cfg.html#i:type=conv", wait_until="load")
    fresh.wait_for_selector("#xref-panel .def a")
    assert "reads type" in fresh.text_content("#xref-panel .defs")  # the cfg's namespace by URL too
    value = fresh.locator("#L2 .s a")  # type=conv: a link too, to the cfg's name
    value.hover()
    assert value.get_attribute("href") == "#i:type=conv"
    fresh.close()
    page.mouse.click(box["x"] + 4, box["y"] + box["height"] / 2)  # its first half: Layer
    page.wait_for_selector("#xref-panel h3")
    assert page.text_content("#xref-panel h3") == "Layer" and page.url.endswith("#i:Layer")
    page.go_back()  # Back closes the panel again
    page.wait_for_function("document.getElementById('xref-panel').hidden")
    page.close()


def test_outline_and_cite(browser, site_url, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site_url}/releases/rel-a/src/kern.cu.html", wait_until="load")
    assert page.locator(".site-header a.start").count() == 1
    page.click("details.outline summary")
    page.locator("details.outline a", has_text="bpropActs").click()
    from archive.sphinxext.idents import ctags_available
    if ctags_available():  # the function's whole body; without ctags, its first line
        page.wait_for_url("**/kern.cu.html#L9-L11")
        assert highlighted(page) == ["L9", "L10", "L11"]
    else:
        page.wait_for_url("**/kern.cu.html#L9")
        page.goto(f"{site_url}/releases/rel-a/src/kern.cu.html#L9-L11", wait_until="load")
    page.click("#L9 .cite-btn")
    page.wait_for_selector("#cite-box:not([hidden])")
    values = page.eval_on_selector_all("#cite-box input", "els => els.map(e => e.value)")
    assert values[0].startswith("swh:1:cnt:") and values[0].endswith(";path=/src/kern.cu;lines=9-11")
    assert ";origin=https://example.org/rel-a;anchor=swh:1:rev:" in values[0]
    assert values[1] == "https://example.org/rel-a/blob/" + "1" * 40 + "/src/kern.cu#L9-L11"
    assert values[2] == "rel-a, src/kern.cu, lines 9\u201311 (https://example.org/rel-a @ 11111111)."
    assert page.get_attribute("a.permalink", "href").endswith("/src/kern.cu#L9-L11")
    assert "cite" not in page.text_content("#L9")  # the button's label is not in the copied code
    snap(page, shots, "cite.png", full=False)
    page.close()


def test_diff_line_numbers_open_the_source(browser, site_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site_url}/versions/src/kern.cu.html#rel-b-b10", wait_until="load")
    assert page.evaluate("document.querySelector(':target').id") == "rel-b-b10"  # a stable anchor
    page.click("#rel-b-b10")
    page.wait_for_url("**/releases/rel-b/src2/kern.cu.html#L10")
    assert highlighted(page) == ["L10"]
    page.close()


@pytest.mark.slow
@pytest.mark.xdist_group("real_site")
def test_real_site_origin_column(browser, real_site, shots):
    """layer.cu's origin column: hidden at first, shown by its button with one revision link
    per line (927 from r1-r561, the rest from the 2012 release), and a link opens the page of
    the revision."""
    if "origin-toggle" not in (real_site / "releases/alexnet-2012/src/layer.cu.html").read_text():
        pytest.skip("the site was built without the releases' histories (archive fetch --from-bundle)")
    handler = functools.partial(_Quiet, directory=str(real_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/releases/alexnet-2012/src/layer.cu.html#L823", wait_until="load")
        assert page.locator("a.org").count() == 0
        page.locator("button.origin-toggle").first.click()
        assert page.evaluate("document.body.classList.contains('show-origin')")
        hrefs = page.eval_on_selector_all("a.org", "els => els.map(e => e.getAttribute('href'))")
        assert len(hrefs) == 2002
        assert sum("revisions/alexnet-2012.html" in h for h in hrefs) == 1075
        assert page.locator("#L823 a.org").is_visible()
        snap(page, shots, "origin-column.png", full=False)
        page.locator("#L823 a.org").click()
        page.wait_for_url("**/revisions/*.html")
        assert page.locator("dl.rev").is_visible()
        page.close()
    finally:
        server.shutdown()


# ---- the reader's layout (issue 22: items 7, 5, 6, 3, 4) ------------------------------------------

TEXT_RECTS = """(sel) => { const line = document.querySelector(sel), out = [];
    const walk = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        if (n.parentElement.closest('.cite-btn, .fn-hist, .lno, .org') || !n.textContent.trim()) continue;
        const r = document.createRange(); r.selectNodeContents(n);
        for (const b of r.getClientRects()) out.push([b.left, b.top, b.right, b.bottom]);
    }
    return out; }"""


def test_cite_button_beside_the_line_not_over_it(browser, site_url, shots):
    """Item 7: the cite control sits beside the first cited line: no character of that line is
    under it, even when the line is long enough to reach the column's edge."""
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(f"{site_url}/releases/rel-b/src2/long.cu.html#L3001", wait_until="load")
        btn = page.locator("#L3001 .cite-btn").bounding_box()
        rects = page.evaluate(TEXT_RECTS, "#L3001")
        assert len({round(r[1]) for r in rects}) > 1  # the line wraps: it fills its rows
        row = [r for r in rects if r[1] < btn["y"] + btn["height"] and r[3] > btn["y"]]
        assert row and max(r[2] for r in row) <= btn["x"] + 0.5, (width, btn, row)
        page.close()


def test_releases_table_commit_on_one_line(browser, site_url):
    """Item 7: the releases table keeps each commit id on one line (it was crushed to 2-character
    lines by the long provenance column)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site_url}/releases/index.html", wait_until="load")
    counts = page.eval_on_selector_all("table.releases td code", "els => els.map(e => e.getClientRects().length)")
    assert counts and set(counts) == {1}
    page.close()


HANG = """(sel) => { const line = document.querySelector(sel), rows = new Map();
    const walk = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
    let first = null;
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        if (n.parentElement.closest('.cite-btn, .fn-hist, .lno, .org')) continue;
        for (let i = 0; i < n.length; i++) {
            if (/\\s/.test(n.data[i])) continue;
            const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
            const b = r.getBoundingClientRect(); if (!b.width) continue;
            if (first === null) first = b.left;
            const y = Math.round(b.top); if (!rows.has(y)) rows.set(y, b.left);
        }
    }
    const ch = (() => { const s = document.createElement('span'); s.textContent = 'x'.repeat(10);
        line.appendChild(s); const w = s.getBoundingClientRect().width / 10; s.remove(); return w; })();
    const blank = first !== null && [...rows.keys()][0] - line.getBoundingClientRect().top > 5;
    return {first, rows: [...rows.values()], ch, blank, left: line.getBoundingClientRect().left}; }"""


def test_wrapped_code_hangs_on_a_phone(browser, site_url, shots):
    """Item 5: at 390 px a wrapped line's continuation rows start 2 columns right of where its
    text starts, not at column 0."""
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto(f"{site_url}/releases/rel-b/src2/long.cu.html#L3001", wait_until="load")
    got = phone.evaluate(HANG, "#L3001")
    assert len(got["rows"]) > 3
    for left in got["rows"][1:]:
        assert abs(left - (got["first"] + 2 * got["ch"])) < 1.5, got
    snap(phone, shots, "hang-phone.png", full=False)
    phone.close()


def test_diff_is_one_column_on_a_phone_and_folds_unfold(browser, site_url, shots):
    """Items 5 and 6: under 600 px the side-by-side diff becomes one column (an unchanged line
    once, the old line above the new); a folded run unfolds in place, its lines read from the
    raw files, with their usual anchors."""
    wide = browser.new_page(viewport={"width": 1280, "height": 900})
    wide.goto(f"{site_url}/versions/src/kern.cu.html", wait_until="load")
    d, i = wide.locator("td.t.del").first.bounding_box(), wide.locator("td.t.ins").first.bounding_box()
    assert abs(d["y"] - i["y"]) < 1 and d["x"] < i["x"]  # side by side
    wide.close()
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto(f"{site_url}/versions/src/kern.cu.html", wait_until="load")
    d, i = phone.locator("td.t.del").first.bounding_box(), phone.locator("td.t.ins").first.bounding_box()
    assert i["y"] >= d["y"] + d["height"] - 1 and abs(d["x"] - i["x"]) < 1  # stacked
    assert i["width"] > 250
    shown = phone.evaluate("""() => [...document.querySelectorAll('table.diff tbody tr')].filter(
        tr => tr.querySelector('td.t.eq')).map(tr => [...tr.querySelectorAll('td.t')].filter(
        t => t.getBoundingClientRect().width > 0).length)""")
    assert shown and set(shown) == {1}  # each unchanged line once
    assert phone.evaluate("document.documentElement.scrollWidth") <= 391
    snap(phone, shots, "diff-phone.png")
    assert phone.locator("#rel-a-a5").count() == 0
    phone.locator("tr.skip button.unfold").first.click()
    phone.wait_for_selector("#rel-a-a5")
    text = phone.evaluate("[5, 6].map(n => document.getElementById('rel-a-a' + n).nextElementSibling.textContent)")
    assert text == ["\t\tgetActs().scale(scale);", "\t}"]
    assert phone.locator("tr.skip").count() == 0
    phone.close()


def test_function_history_from_the_listing_and_the_breadcrumb(browser, site_url, shots):
    """Items 4 and 3: a function's first line links to its history (from the outline; the label
    is drawn by CSS, so it is not copied with the code); a long listing keeps a breadcrumb
    (release / file) at the top once its header is scrolled away."""
    from archive.sphinxext.idents import ctags_available
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    if ctags_available():
        page.goto(f"{site_url}/releases/rel-a/src/kern.cu.html", wait_until="load")
        href = page.get_attribute("#L3 a.fn-hist", "href")
        assert href.endswith("history/src/kern.cu.html#f-Layer-fpropActs"), href
        assert "history" not in page.text_content("#L3")
        page.click("#L3 a.fn-hist")
        page.wait_for_url("**/history/src/kern.cu.html#f-Layer-fpropActs")
    page.goto(f"{site_url}/releases/rel-b/src2/long.cu.html", wait_until="load")
    assert page.locator("nav.crumb").is_hidden()  # the header is in view
    page.goto(f"{site_url}/releases/rel-b/src2/long.cu.html#L2800", wait_until="load")
    page.wait_for_timeout(150)
    assert page.locator("nav.crumb").is_visible()
    assert page.text_content("nav.crumb").startswith("rel-b / src2/long.cu")
    top, bar = page.evaluate("""[document.getElementById('L2800').getBoundingClientRect().top,
                                 document.querySelector('nav.crumb').getBoundingClientRect().bottom]""")
    assert bar - 1 <= top <= bar + 40  # the landed line is just below the breadcrumb, not under it
    snap(page, shots, "crumb.png", full=False)
    page.close()


def test_identifier_panel_links_a_definition_to_its_history(browser, site_url):
    """Item 4: in the identifier panel (and on the search page), a definition that is a function
    with a history links to it (history/functions.js, loaded only when definitions are shown)."""
    from archive.sphinxext.idents import ctags_available
    if not ctags_available():
        pytest.skip("function histories need Universal Ctags (apt-get install universal-ctags)")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    loaded: list[str] = []
    page.on("request", lambda r: loaded.append(r.url))
    page.goto(f"{site_url}/releases/rel-b/src2/kern.cu.html", wait_until="load")
    assert not [u for u in loaded if u.endswith("functions.js")]
    token = page.locator("#L3 a.nf")
    box = token.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 4, box["y"] + box["height"] / 2)
    page.wait_for_selector("#xref-panel li.def a.def-hist")
    hrefs = page.eval_on_selector_all("#xref-panel li.def a.def-hist", "els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all(h.endswith("history/src/kern.cu.html#f-Layer-fpropActs") for h in hrefs), hrefs
    page.goto(f"{site_url}/identifiers.html?q=fpropActs", wait_until="load")
    page.wait_for_selector("#idres li.def a.def-hist")
    page.locator("#idres li.def a.def-hist").first.click()
    page.wait_for_url("**/history/src/kern.cu.html#f-Layer-fpropActs")
    page.close()


def _serve(root: Path):
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.mark.slow
@pytest.mark.xdist_group("real_site")
def test_real_site_layout_desktop(browser, real_site, shots):
    """The real site at 1280 px, light and dark: layer.cu's Outline items (182, numbers up to 3
    digits) stay in their columns; the breadcrumb follows the function one reads; each
    function's first line links to its history; the landing page, lineage, the versions table
    and a versions page link to the function histories; a versions page has a jump menu to its
    two diffs and marks whitespace-only changes."""
    server, url = _serve(real_site)
    try:
        for scheme in ("light", "dark"):
            page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
            page.goto(f"{url}/releases/alexnet-2012/src/layer.cu.html", wait_until="load")
            page.click("details.outline summary")
            overlaps = page.evaluate("""() => {
                const lis = [...document.querySelectorAll('details.outline li')], bad = [];
                const boxes = lis.map(li => { const r = li.getBoundingClientRect();
                    const m = parseFloat(getComputedStyle(li).marginLeft);
                    let right = r.left; for (const c of li.querySelectorAll('*')) for (const b of c.getClientRects())
                        right = Math.max(right, b.right);
                    return {left: r.left - m, right, top: r.top, bottom: r.bottom}; });
                for (const a of boxes) for (const b of boxes)
                    if (a.left < b.left - 1 && a.right > b.left + 0.5 && a.top < b.bottom && b.top < a.bottom) bad.push([a, b]);
                return [lis.length, bad.length]; }""")
            assert overlaps[0] > 150 and overlaps[1] == 0, overlaps
            snap(page, shots, f"outline-1280-{scheme}.png", full=False)
            page.goto(f"{url}/releases/alexnet-2012/src/layer.cu.html#L830", wait_until="load")
            page.mouse.wheel(0, 10)
            page.wait_for_timeout(150)
            assert page.text_content("nav.crumb").startswith("alexnet-2012 / src/layer.cu / ConvLayer::fpropActs")
            page.evaluate("document.getElementById('L1020').scrollIntoView()")
            page.wait_for_timeout(150)
            assert "SoftmaxLayer::fpropActs" in page.text_content("nav.crumb")
            href = page.get_attribute("#L823 a.fn-hist", "href")
            assert href.endswith("history/src/layer.cu.html#f-ConvLayer-fpropActs"), href
            snap(page, shots, f"crumb-1280-{scheme}.png", full=False)
            page.goto(f"{url}/releases/alexnet-2012/src/layer.cu.html#L823-L842", wait_until="load")
            btn = page.locator("#L823 .cite-btn").bounding_box()
            rects = page.evaluate(TEXT_RECTS, "#L823")
            row = [r for r in rects if r[1] < btn["y"] + btn["height"] and r[3] > btn["y"]]
            assert max(r[2] for r in row) <= btn["x"] + 0.5
            snap(page, shots, f"cite-1280-{scheme}.png", full=False)
            page.goto(f"{url}/versions/src/layer.cu.html", wait_until="load")
            jumps = page.eval_on_selector_all("nav.diff-jump a", "els => els.map(e => e.getAttribute('href'))")
            assert jumps == ["#cuda-convnet-r561..alexnet-2012", "#alexnet-2012..cuda-convnet2"]
            page.click("nav.diff-jump a >> nth=1")
            top = page.evaluate("document.getElementById('alexnet-2012..cuda-convnet2').getBoundingClientRect().top")
            assert -2 <= top < 100
            assert page.locator("tr.ws").count() > 0
            assert page.locator("p.fn-history-link a[href$='history/src/layer.cu.html']").count() == 1
            snap(page, shots, f"versions-1280-{scheme}.png", full=False)
            page.close()
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name, sel in [("index.html", "a[href$='history/src/layer.cu.html']"),
                          ("lineage.html", "a[href$='history/src/layer.cu.html']"),
                          ("versions/index.html", "a.fn-history[href$='history/src/layer.cu.html']")]:
            page.goto(f"{url}/{name}", wait_until="load")
            assert page.locator(sel).count() >= 1, name
        page.click("a.fn-history[href$='history/src/layer.cu.html']")
        page.wait_for_url("**/history/src/layer.cu.html")
        page.goto(f"{url}/releases/index.html", wait_until="load")
        counts = page.eval_on_selector_all("table.releases td code", "els => els.map(e => e.getClientRects().length)")
        assert counts and set(counts) == {1}
        snap(page, shots, "releases-1280-light.png", full=False)
        page.close()
    finally:
        server.shutdown()


@pytest.mark.slow
@pytest.mark.xdist_group("real_site")
def test_real_site_layout_phone(browser, real_site, shots):
    """The real site at 390 px, light and dark: layer.cu's wrapped lines hang under their own
    indentation; the versions page and a function history are one column; the experiment
    timeline's labels are at least 10 px and its points can be tapped (a tap 6 px off a point's
    centre hits it); the compatibility table fits the screen, one labelled card per row."""
    server, url = _serve(real_site)
    try:
        for scheme in ("light", "dark"):
            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                     color_scheme=scheme)
            phone.goto(f"{url}/releases/alexnet-2012/src/layer.cu.html#L823", wait_until="load")
            hung = capped = 0
            for n in range(823, 900):  # ConvLayer::fpropActs and after: indented calls that wrap
                got = phone.evaluate(HANG, f"#L{n}")
                if len(got["rows"]) < 2 or got["blank"]:  # one row; or its first word did not fit
                    continue
                cont = got["rows"][1:]
                assert max(cont) - min(cont) < 1, (n, got)  # every continuation row starts at one place
                if abs(cont[0] - (got["first"] + 2 * got["ch"])) < 1.5:
                    hung += 1   # under its indentation, 2 columns in
                else:           # a deep indentation: the hang stops at 20 columns, the rest is for code
                    assert cont[0] < got["first"] and cont[0] - got["left"] > 25 * got["ch"], (n, got)
                    capped += 1
            assert hung >= 10 and capped >= 1, (hung, capped)
            snap(phone, shots, f"code-390-{scheme}.png", full=False)
            for name in ("versions/src/layer.cu.html", "history/src/layer.cu.html"):
                phone.goto(f"{url}/{name}", wait_until="load")
                d, i = phone.locator("td.t.del").first.bounding_box(), phone.locator("td.t.ins").first.bounding_box()
                assert abs(d["x"] - i["x"]) < 1 and i["width"] > 250, name
                assert phone.evaluate("document.documentElement.scrollWidth") <= 391, name
            phone.evaluate("document.querySelector('td.t.ins').scrollIntoView()")
            snap(phone, shots, f"fn-history-390-{scheme}.png", full=False)
            phone.goto(f"{url}/experiments/index.html", wait_until="load")
            sizes = phone.eval_on_selector_all(".exp-diagram-wrap svg text",
                                               "els => els.map(e => e.getBoundingClientRect().height)")
            assert sizes and min(sizes) >= 10, min(sizes)
            phone.evaluate("document.querySelector('.exp-diagram-wrap').scrollIntoView()")
            hit = phone.evaluate("""() => { const c = [...document.querySelectorAll('.exp-diagram-wrap svg a circle')]
                .find(c => { const b = c.getBoundingClientRect(); return b.left > 20 && b.right < 370 && b.top > 20; });
                const b = c.getBoundingClientRect(), x = (b.left + b.right) / 2, y = (b.top + b.bottom) / 2;
                const at = document.elementFromPoint(x + 6, y);
                return [b.width, at === c || (at && at.closest('a') === c.closest('a'))]; }""")
            assert hit[0] >= 6 and hit[1], hit
            snap(phone, shots, f"timeline-390-{scheme}.png", full=False)
            phone.goto(f"{url}/compat.html", wait_until="load")
            table = phone.evaluate("""() => { const t = document.querySelector('table.compat-table');
                t.scrollIntoView(); const w = t.closest('div') || t;
                return [t.scrollWidth, t.getBoundingClientRect().right, document.documentElement.scrollWidth,
                        t.querySelectorAll('td[data-label]').length]; }""")
            assert table[0] <= 390 and table[1] <= 390 and table[2] <= 391 and table[3] > 0, table
            snap(phone, shots, f"compat-390-{scheme}.png", full=False)
            phone.close()
    finally:
        server.shutdown()


# --- issue 22 (content): cfg cross-references, the experiments' results and sortable table --------

@pytest.fixture(scope="module")
def content_url(tmp_path_factory):
    """The test root with a synthetic experiments folder, a compat table and a def/params pair."""
    import json

    from archive import manifest
    from tests.archive.sphinxext.siteroot import regenerate_manifests
    from tests.archive.sphinxext.test_cfgxref import DEF, MAKER, PARAMS
    from tests.archive.test_experiment_history import write_folder
    root = copy_site(tmp_path_factory.mktemp("browser-content") / "site")
    rel = root / "releases" / "rel-a"
    (rel / "layers" / "layers-9.cfg").write_text(DEF)
    (rel / "layers" / "layer-params-9.cfg").write_text(PARAMS)
    (rel / "src" / "maker.cu").write_text(MAKER)
    for m in regenerate_manifests(root).values():
        manifest.write(m, root / "manifests")
    write_folder(root / "layers")
    with open(root / "conf.py", "a") as f:
        f.write("archive_experiments_dir = 'layers'\n")
    (root / "compat").mkdir()
    (root / "compat" / "alexnet-2012.json").write_text(json.dumps({"release": "rel-a", "rows": [
        {"cfg": "layers/layers-9.cfg", "params": ["layers/layer-params-9.cfg"], "parsed": True}]}))
    build(root)
    from archive.sphinxext import fulltext
    pytest.importorskip("pagefind", reason="pagefind[extended] is not installed (pip install -e .)")
    assert fulltext.index(root / "_build" / "html") == 0   # Pagefind, as make site runs it
    handler = functools.partial(_Quiet, directory=str(root / "_build" / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_cfg_inputs_and_type_links(browser, content_url, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{content_url}/releases/rel-a/layers/layers-9.cfg.html")
    page.click('#L10 a.cfgx:text-is("pool1a")')          # inputs=pool1a, data → [pool1a]
    page.wait_for_function("location.hash === '#L4'")
    assert page.evaluate("document.getElementById('L4').getBoundingClientRect().top") < 900
    snap(page, shots, "cfg-xref-1280.png", full=False)
    page.goto(f"{content_url}/releases/rel-a/layers/layers-9.cfg.html")
    page.focus('#L9 a.cfgx')                               # type=fc, reached by keyboard
    page.keyboard.press("Enter")
    page.wait_for_url("**/src/maker.cu.html#L1")
    page.close()


def test_experiment_results_chart_and_sortable_table(browser, content_url, shots):
    for width, scheme in ((1280, "light"), (390, "dark")):
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page.goto(f"{content_url}/experiments/index.html")
        points = page.eval_on_selector_all("svg.experiment-results a", "els => els.map(a => {"
                                           "const r = a.getBoundingClientRect(); return [r.width, r.height]; })")
        assert len(points) == 2 and all(w >= 12 and h >= 12 for w, h in points), points  # tappable
        sizes = page.eval_on_selector_all("svg.experiment-results text",
                                          "els => els.map(t => t.getBoundingClientRect().height)")
        assert sizes and min(sizes) >= 10, sizes                                           # readable labels
        snap(page, shots, f"experiments-results-{width}-{scheme}.png")
        page.close()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{content_url}/experiments/index.html")
    stems = lambda: page.eval_on_selector_all("table.sortable tbody td.stem", "els => els.map(e => e.textContent)")  # noqa: E731
    top1 = page.locator("table.sortable thead th", has_text="top-1 %")
    top1.focus()
    page.keyboard.press("Enter")                           # ascending: 92 (41.00) after 91 (40.66); no result last
    got = stems()
    assert got[:2] == ["91", "92"] and top1.get_attribute("aria-sort") == "ascending"
    top1.click()                                           # descending
    assert stems()[:2] == ["92", "91"] and top1.get_attribute("aria-sort") == "descending"
    page.locator("table.sortable thead th", has_text="#").first.click()
    assert stems() == sorted(got, key=lambda s: (int(s.split("-")[0]), s))
    page.close()


def test_full_text_search_lands_on_the_line(browser, content_url, shots):
    """Pagefind's index of the source pages: a word of a cfg comment (the diary) is found, its
    result links to the line (#L7), and following it highlights that line."""
    from tests.archive.sphinxext.test_cfgxref import PARAMS
    line = PARAMS.splitlines().index("# killed on guppy9 at epoch 3") + 1
    for width, scheme in ((1280, "light"), (390, "dark")):
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page.goto(f"{content_url}/search-code.html?q=guppy9")
        link = page.locator(f'a.ftline[href$="layer-params-9.cfg.html#L{line}"]')
        link.wait_for(timeout=15000)
        assert "guppy9" in page.locator("#ftres > li").first.inner_text()
        snap(page, shots, f"search-code-{width}-{scheme}.png", full=False)
        link.click()
        page.wait_for_url(f"**/layers/layer-params-9.cfg.html#L{line}")
        page.wait_for_function(f"document.getElementById('L{line}').classList.contains('hl')")
        page.close()
    page = browser.new_page()
    page.goto(f"{content_url}/search-code.html?q=epsW")                  # a setting: found in both cfgs
    page.locator("a.ftline").first.wait_for(timeout=15000)
    urls = page.eval_on_selector_all("a.ftline", "els => els.map(a => a.getAttribute('href'))")
    assert any(u.endswith("layer-params-9.cfg.html#L2") for u in urls), urls
    page.close()
