/* Line anchors: #L12 or #L10-L20 highlights those lines (and scrolls to the first);
   shift-click on a line number extends the selection into a range. The SWHID on a source
   page gains its ;lines= qualifier for the selected range, the upstream link its #L…-L…, and a
   "cite" button on the first selected line gives all three citations to copy. Deep links land
   (see land()). No network, no dependencies. */
(function () {
  "use strict";
  var RANGE = /^#L(\d+)(?:-L(\d+))?$/;
  var anchorLine = null;

  function lastLine() {
    var all = document.querySelectorAll(".ln[id^='L']");
    return all.length ? parseInt(all[all.length - 1].id.slice(1), 10) : 0;
  }

  function lines(first, last) {
    var out = [];
    for (var n = first; n <= last; n++) {
      var el = document.getElementById("L" + n);
      if (el) out.push(el);
    }
    return out;
  }

  function apply(scroll) {
    var old = document.querySelectorAll(".ln.hl");
    for (var i = 0; i < old.length; i++) old[i].classList.remove("hl");
    var m = RANGE.exec(window.location.hash);
    var swh = document.querySelector("code.swhid");
    if (!m) {
      if (swh) swh.textContent = swh.getAttribute("data-swhid");
      citeButton(null, 0, 0);
      return;
    }
    var first = parseInt(m[1], 10), last = m[2] ? parseInt(m[2], 10) : first;
    if (last < first) { var t = first; first = last; last = t; }
    var max = lastLine();  // #L1-L999999999 is clamped to the file, not looped over
    first = Math.min(first, max);
    last = Math.min(last, max);
    var sel = lines(first, last);
    for (var j = 0; j < sel.length; j++) sel[j].classList.add("hl");
    anchorLine = first;
    if (swh) swh.textContent = swh.getAttribute("data-swhid") + ";lines=" + first + (last > first ? "-" + last : "");
    if (scroll && sel.length) land(sel[0]);
    citeButton(sel.length ? sel[0] : null, first, last);
    var perm = document.querySelector("a.permalink"), src = document.querySelector(".source[data-permalink]");
    if (perm && src) perm.href = src.getAttribute("data-permalink") + "#L" + first + (last > first ? "-L" + last : "");
  }

  // Cite: a button beside the first selected line of a release file gives the SWHID with
  // ;lines=, the upstream permalink with #L…-L… and a short text citation, each with a copy
  // button. The button's label is drawn by CSS, so copying code never copies it.
  var citeBtn = null, citeBox = null;
  function citation(src, first, last) {
    var range = first + (last > first ? "-" + last : "");
    return {
      swhid: src.getAttribute("data-swhid") + ";lines=" + range,
      permalink: src.getAttribute("data-permalink") + "#L" + first + (last > first ? "-L" + last : ""),
      text: src.getAttribute("data-release") + ", " + src.getAttribute("data-path") + ", line" +
            (last > first ? "s " + first + "\u2013" + last : " " + first) + " (" +
            src.getAttribute("data-upstream").replace(/^https?:\/\/(www\.)?github\.com\//, "") + " @ " +
            src.getAttribute("data-commit").slice(0, 8) + ")."
    };
  }
  function copy(text, btn) {
    var done = function () { btn.textContent = "copied"; setTimeout(function () { btn.textContent = "copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(); });
    } else { fallback(); }
    function fallback() {
      var t = document.createElement("textarea");
      t.value = text; document.body.appendChild(t); t.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selectable */ }
      document.body.removeChild(t);
    }
  }
  function citeButton(line, first, last) {
    var src = document.querySelector(".source[data-swhid]");
    if (citeBox) citeBox.hidden = true;
    if (!src) return;
    var held = document.querySelector(".ln.cite-at");
    if (held && held !== line) held.classList.remove("cite-at");
    if (!line) { if (citeBtn) citeBtn.remove(); return; }
    if (!citeBtn) {
      citeBtn = document.createElement("button");
      citeBtn.type = "button";
      citeBtn.className = "cite-btn";
      citeBtn.setAttribute("aria-label", "Cite these lines");
      citeBtn.addEventListener("click", function (ev) {
        ev.preventDefault(); ev.stopPropagation();
        openCite(src, citeBtn.getAttribute("data-first") | 0, citeBtn.getAttribute("data-last") | 0);
      });
    }
    citeBtn.setAttribute("data-first", first);
    citeBtn.setAttribute("data-last", last);
    line.appendChild(citeBtn);
    line.classList.add("cite-at");  // the line keeps room on its right: the button is beside its text
  }
  function openCite(src, first, last) {
    var c = citation(src, first, last);
    if (!citeBox) {
      citeBox = document.createElement("div");
      citeBox.id = "cite-box";
      citeBox.setAttribute("role", "dialog");
      citeBox.setAttribute("aria-label", "Cite these lines");
      document.body.appendChild(citeBox);
      document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") citeBox.hidden = true; });
    }
    var rows = [["SWHID", c.swhid], ["Upstream", c.permalink], ["Text", c.text]];
    citeBox.innerHTML = "<div class=\"ch\"><strong>Cite lines " + first + (last > first ? "\u2013" + last : "") +
      "</strong><button type=\"button\" class=\"close\" aria-label=\"Close\">\u00d7</button></div>" +
      rows.map(function (r, i) {
        return "<label>" + r[0] + "<span class=\"row\"><input readonly data-i=\"" + i + "\"><button type=\"button\" data-i=\"" + i +
               "\" class=\"copy\">copy</button></span></label>";
      }).join("");
    var inputs = citeBox.querySelectorAll("input");
    for (var i = 0; i < inputs.length; i++) inputs[i].value = rows[i][1];
    citeBox.querySelector(".close").addEventListener("click", function () { citeBox.hidden = true; });
    var btns = citeBox.querySelectorAll("button.copy");
    for (var j = 0; j < btns.length; j++) {
      btns[j].addEventListener("click", function (ev) { copy(rows[ev.target.getAttribute("data-i") | 0][1], ev.target); });
    }
    citeBox.hidden = false;
    var r = citeBtn.getBoundingClientRect();
    citeBox.style.top = Math.max(8, Math.min(window.innerHeight - citeBox.offsetHeight - 8, r.bottom + 4)) + "px";
  }

  // Blocks off screen are laid out lazily (CSS content-visibility), with estimated heights:
  // scrolling to a line below them would land wherever the estimates put it. So every lazy
  // block above the target is laid out first, then the page scrolls, and scrolls again once
  // late layout (fonts, images) settles, unless the reader has scrolled meanwhile.
  function land(target) {
    var lazy = document.querySelectorAll("pre.code.full, .seg.has-notes");
    for (var i = 0; i < lazy.length; i++) {
      var el = lazy[i];
      if (el.contains(target) || (el.compareDocumentPosition(target) & Node.DOCUMENT_POSITION_FOLLOWING)) {
        el.style.contentVisibility = "visible";
      }
    }
    var top = function () { return target.getBoundingClientRect().top; };
    target.scrollIntoView({block: "start"});
    var want = top(), tries = 0, moved = false;
    var onUser = function () { moved = true; };
    ["wheel", "touchstart", "keydown", "mousedown"].forEach(function (t) {
      window.addEventListener(t, onUser, {once: true, passive: true});
    });
    function settle() {
      if (moved) return;
      if (Math.abs(top() - want) > 1) target.scrollIntoView({block: "start"});
      if (++tries < 10) requestAnimationFrame(settle);
    }
    requestAnimationFrame(settle);
    window.addEventListener("load", function () { if (!moved) target.scrollIntoView({block: "start"}); });
  }

  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("a.lno") : null;
    if (!a || a.getAttribute("href").charAt(0) !== "#") return;
    var n = parseInt(a.getAttribute("data-n"), 10);
    if (ev.shiftKey && anchorLine !== null) {
      ev.preventDefault();
      var first = Math.min(anchorLine, n), last = Math.max(anchorLine, n);
      history.replaceState(null, "", "#L" + first + (last > first ? "-L" + last : ""));
      apply(false);
      anchorLine = first;
    }
  });
  // diffs: a line number opens that line of its release file (the table knows both pages)
  document.addEventListener("click", function (ev) {
    var td = ev.target.closest ? ev.target.closest("table.diff td.lno[id]") : null;
    var table = td && td.closest("table.diff[data-a]");
    if (!table) return;
    var side = td.cellIndex < 2 ? "data-a" : "data-b";
    window.location.href = table.getAttribute(side) + "#L" + td.textContent;
  });
  window.addEventListener("hashchange", function () { apply(true); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { apply(true); });
  } else {
    apply(true);
  }
})();
