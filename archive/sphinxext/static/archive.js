/* Line anchors: #L12 or #L10-L20 highlights those lines (and scrolls to the first);
   shift-click on a line number extends the selection into a range. The SWHID on a source
   page gains its ;lines= qualifier for the selected range. No network, no dependencies. */
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
  window.addEventListener("hashchange", function () { apply(true); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { apply(true); });
  } else {
    apply(true);
  }
})();
