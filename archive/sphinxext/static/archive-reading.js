/* Reading aids that need no markup per line (the pages stay light): a wrapped code line hangs
   under its own indentation; each function's first line links to its history (from the
   outline's "history" links); a breadcrumb (release / file / current function) stays at the
   top of a long listing; a folded run of unchanged lines in a diff unfolds in place (from the
   raw files beside the source pages); the compatibility table's cells carry their column's name
   (shown on phones, where the table becomes one card per row). No network beyond this site. */
(function () {
  "use strict";

  // Hanging indent: --t (tabs) and --s (spaces) of each line's leading whitespace; the CSS
  // turns them into the line's padding and a negative text-indent (archive.css).
  function hang(root) {
    var lines = root.querySelectorAll("pre.code .ln");
    for (var i = 0; i < lines.length; i++) {
      var ln = lines[i], t = 0, s = 0, node = ln.firstChild;
      outer: for (; node; node = node.nextSibling) {
        if (node.nodeType === 1 && (node.classList.contains("lno") || node.classList.contains("org"))) continue;
        var text = node.textContent;
        for (var k = 0; k < text.length; k++) {
          var c = text.charAt(k);
          if (c === "\t") { t++; s = 0; }      // a tab reaches the next stop: spaces before it vanish
          else if (c === " ") s++;
          else break outer;
        }
      }
      if (t) ln.style.setProperty("--t", t);
      if (s) ln.style.setProperty("--s", s);
    }
  }

  // Each function's first line: a small "history" link (its label drawn by CSS, so copying
  // code never copies it), taken from the outline.
  function outlineItems() {
    var out = [], lis = document.querySelectorAll("details.outline li");
    for (var i = 0; i < lis.length; i++) {
      var a = lis[i].querySelector("a[href^='#L']");
      if (!a) continue;
      var m = /^#L(\d+)(?:-L(\d+))?$/.exec(a.getAttribute("href"));
      if (!m) continue;
      var h = lis[i].querySelector("a.hist");
      out.push({first: +m[1], last: m[2] ? +m[2] : 0, name: a.textContent, href: a.getAttribute("href"),
                hist: h ? h.getAttribute("href") : null});
    }
    return out;
  }
  function historyLinks(items) {
    for (var i = 0; i < items.length; i++) {
      var it = items[i], ln = it.hist && document.getElementById("L" + it.first);
      if (!ln || ln.querySelector(".fn-hist")) continue;
      var a = document.createElement("a");
      a.className = "fn-hist";
      a.href = it.hist;
      a.title = "History of " + it.name + " across the releases";
      a.setAttribute("aria-label", a.title);
      ln.appendChild(a);
      ln.classList.add("has-fh");
    }
  }

  // The breadcrumb of a long listing: where one is, updated on scroll.
  function crumb(items) {
    var listing = document.querySelector(".listing");
    if (!listing || listing.offsetHeight < 2.5 * window.innerHeight) return;
    var src = document.querySelector(".source[data-path]");
    var h1 = document.querySelector("header.provenance h1, div.body h1");
    var bar = document.createElement("nav");
    bar.className = "crumb";
    bar.setAttribute("aria-label", "Where you are in this file");
    bar.hidden = true;
    var rel = "", path = "";
    if (src) {
      var relLink = document.querySelector("header.provenance h1 a");
      rel = relLink ? "<a href=\"" + relLink.getAttribute("href") + "\">" + esc(src.getAttribute("data-release")) + "</a> / " : "";
      path = src.getAttribute("data-path");
    } else if (h1) {
      path = h1.textContent;
    }
    bar.innerHTML = rel + "<a class=\"file\" href=\"#\">" + esc(path) + "</a><span class=\"fn\"></span>";
    bar.querySelector("a.file").addEventListener("click", function (ev) {
      ev.preventDefault(); window.scrollTo(0, 0);
    });
    document.body.appendChild(bar);
    document.body.classList.add("has-crumb");
    var fn = bar.querySelector(".fn"), shown = null, ticking = false;
    var sorted = items.slice().sort(function (a, b) { return a.first - b.first; });
    function at(n) {  // the innermost item holding line n: the one starting last (without ends: the last before n)
      var best = null;
      for (var i = 0; i < sorted.length && sorted[i].first <= n; i++) {
        if (!sorted[i].last || n <= sorted[i].last) best = sorted[i];
      }
      return best;
    }
    function update() {
      ticking = false;
      var top = listing.getBoundingClientRect().top;
      bar.hidden = top > 0;
      if (bar.hidden) return;
      var code = listing.querySelector(".codecol").getBoundingClientRect();
      var el = document.elementFromPoint(code.left + 8, bar.offsetHeight + 6);
      var ln = el && el.closest ? el.closest(".ln[id]") : null;
      if (!ln) return;
      var it = at(parseInt(ln.id.slice(1), 10));
      if (it === shown) return;
      shown = it;
      fn.innerHTML = it ? " / <a href=\"" + it.href + "\">" + esc(it.name) + "</a>" +
        (it.hist ? " <a class=\"h\" href=\"" + it.hist + "\">history</a>" : "") : "";
    }
    window.addEventListener("scroll", function () {
      if (!ticking) { ticking = true; requestAnimationFrame(update); }
    }, {passive: true});
    window.addEventListener("hashchange", function () { requestAnimationFrame(update); });
    update();
  }

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c]; });
  }

  // Diffs: a folded run of unchanged lines unfolds in place. data-fold on its row: "<id prefix
  // a> <first line a> <id prefix b> <first line b> <count>"; the table's data-ra/data-rb: the
  // raw files.
  var raw = {};
  function rawLines(url) {
    if (!raw[url]) {
      raw[url] = fetch(url).then(function (r) {
        if (!r.ok) throw new Error(url + ": " + r.status);
        return r.text();
      }).then(function (t) { return t.split(/\r?\n/); });
    }
    return raw[url];
  }
  function unfold(tr) {
    var table = tr.closest("table.diff"), f = tr.getAttribute("data-fold").split(" ");
    var ida = f[0], a1 = +f[1], idb = f[2], b1 = +f[3], n = +f[4];
    tr.classList.add("loading");
    Promise.all([rawLines(table.getAttribute("data-ra")), rawLines(table.getAttribute("data-rb"))]).then(function (got) {
      var frag = document.createDocumentFragment();
      for (var k = 0; k < n; k++) {
        var row = document.createElement("tr");
        row.className = "unfolded";
        row.innerHTML = "<td class=\"lno\" id=\"" + ida + (a1 + k) + "\">" + (a1 + k) + "</td><td class=\"t eq\"></td>" +
                        "<td class=\"lno\" id=\"" + idb + (b1 + k) + "\">" + (b1 + k) + "</td><td class=\"t eq\"></td>";
        row.children[1].textContent = got[0][a1 + k - 1] || "";
        row.children[3].textContent = got[1][b1 + k - 1] || "";
        frag.appendChild(row);
      }
      tr.parentNode.replaceChild(frag, tr);
    }, function () { tr.classList.remove("loading"); tr.classList.add("failed"); });
  }
  function folds() {
    var rows = document.querySelectorAll("table.diff[data-ra] tr.skip[data-fold]");
    for (var i = 0; i < rows.length; i++) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "unfold";
      b.textContent = "show";
      rows[i].firstElementChild.insertBefore(b, rows[i].firstElementChild.firstChild);
    }
    document.addEventListener("click", function (ev) {
      var b = ev.target.closest ? ev.target.closest("button.unfold") : null;
      if (b) unfold(b.closest("tr"));
    });
  }

  // The compatibility table: each cell labelled with its column's name (for the phone layout).
  function labels() {
    var tables = document.querySelectorAll("table.compat-table");
    for (var i = 0; i < tables.length; i++) {
      var heads = tables[i].querySelectorAll("thead th");
      var rows = tables[i].querySelectorAll("tbody tr");
      for (var r = 0; r < rows.length; r++) {
        for (var c = 0; c < rows[r].cells.length && c < heads.length; c++) {
          rows[r].cells[c].setAttribute("data-label", heads[c].textContent);
        }
      }
    }
  }

  // The identifier panel and search page: a definition that is a function with a history gets
  // a link to it (history/functions.js, loaded the first time a definition list appears).
  var ROOT = (function () {
    var s = document.currentScript && document.currentScript.src;
    return s ? s.replace(/_static\/archive-reading\.js(\?.*)?$/, "") : "";
  })();
  var fnHist = null, fnWait = [];
  function withFnHist(then) {
    if (fnHist) { then(fnHist); return; }
    fnWait.push(then);
    if (fnWait.length > 1) return;
    var s = document.createElement("script");
    s.src = ROOT + "history/functions.js";
    s.onload = function () { fnHist = window.ARCHIVE_FN_HIST || {}; fnWait.forEach(function (f) { f(fnHist); }); fnWait = []; };
    document.head.appendChild(s);
  }
  function linkDefs(box) {
    var defs = box.querySelectorAll("li.def > a:first-child:not([data-fh])");
    if (!defs.length || !ROOT) return;
    withFnHist(function (map) {
      for (var i = 0; i < defs.length; i++) {
        var a = defs[i];
        a.setAttribute("data-fh", "");
        var m = /^([^#]*)#L(\d+)/.exec(a.href.indexOf(ROOT) === 0 ? a.href.slice(ROOT.length) : "");
        var h = m && map[m[1]] && map[m[1]][m[2]];
        if (!h) continue;
        var l = document.createElement("a");
        l.className = "def-hist";
        l.href = ROOT + h;
        l.textContent = "history";
        l.title = "This function across the releases";
        a.parentNode.appendChild(document.createTextNode(" "));
        a.parentNode.appendChild(l);
      }
    });
  }
  function watchDefs() {
    if (!window.MutationObserver) return;
    var seen = function () {
      var boxes = document.querySelectorAll("#xref-panel, #idres");
      for (var i = 0; i < boxes.length; i++) linkDefs(boxes[i]);
    };
    var timer = null;
    new MutationObserver(function (records) {
      for (var i = 0; i < records.length; i++) {
        var t = records[i].target;
        if (t.closest && t.closest("#xref-panel, #idres") || (records[i].addedNodes[0] && records[i].addedNodes[0].id === "xref-panel")) {
          clearTimeout(timer); timer = setTimeout(seen, 30); return;
        }
      }
    }).observe(document.body, {childList: true, subtree: true});
  }

  function init() {
    hang(document);
    var items = outlineItems();
    historyLinks(items);
    crumb(items);
    folds();
    labels();
    watchDefs();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
