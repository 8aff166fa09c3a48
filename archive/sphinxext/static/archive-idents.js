/* Identifiers as links (like Elixir), offline. Every name in a code listing is a link,
   <a href>Layer</a> or <a class="nf" href>fpropActs</a> (highlight.py); its href, empty in the
   page (the page itself: it takes the keyboard focus), becomes the identifier's URL,
   page.html#i:Layer, the moment it is pointed at, touched or focused, so a new tab, a middle
   click or "copy link" get that URL.
   Clicking it (or Enter) opens a panel with its definitions (Universal Ctags) and every
   reference, grouped by release and file, each with its line as context, and puts #i:<name> in
   the address; a page loaded with that fragment opens the panel; Back closes it again. A cfg
   "type=cmrnorm" value leads to the code that reads that type (#i:type=cmrnorm).
   The index is loaded only when asked for: _ids/files.js and the one shard _ids/<k>.js holding
   the name (scripts, so file:// works too). The identifier search page uses the same data. */
(function () {
  "use strict";
  if (window.ARCHIVE_IDENTS) return;  // loaded twice (the search page names it too)
  var root = document.documentElement.getAttribute("data-content_root") || "./";
  var NAME = /^(n|na|nb|bp|nc|no|nd|ni|ne|nf|fm|py|nl|nn|nx|nt|nv|vc|vg|vi|vm)$/;
  var SHARDS = 128, shards = {}, waiting = {}, files = null, filesWait = [];
  var FIRST = 300;  // references drawn at once; the rest one click away ("show all")

  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function crc32(str) {  // the shard of a name: zlib.crc32(utf-8) % SHARDS, as idents.py
    var c, crc = 0xFFFFFFFF, bytes = unescape(encodeURIComponent(str));
    for (var i = 0; i < bytes.length; i++) {
      c = (crc ^ bytes.charCodeAt(i)) & 0xFF;
      for (var k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xEDB88320 : c >>> 1;
      crc = (crc >>> 8) ^ c;
    }
    return (crc ^ 0xFFFFFFFF) >>> 0;
  }
  function script(src) {
    var s = document.createElement("script");
    s.src = root + src;
    document.head.appendChild(s);
  }
  window.ARCHIVE_ID_SHARD = function (k, data) {
    shards[k] = data;
    (waiting[k] || []).forEach(function (f) { f(data); });
    delete waiting[k];
  };
  function loadFiles(then) {
    if (files) return then(files);
    filesWait.push(then);
    if (filesWait.length > 1) return;
    script("_ids/files.js");
    var poll = setInterval(function () {
      if (!window.ARCHIVE_ID_FILES) return;
      clearInterval(poll);
      files = window.ARCHIVE_ID_FILES;
      filesWait.forEach(function (f) { f(files); });
    }, 20);
  }
  function lookup(name, then) {
    var k = crc32(name) % SHARDS;
    var done = function (data) { loadFiles(function (fl) { then(data[name] || {d: [], r: [], n: 0}, fl); }); };
    if (shards[k]) return done(shards[k]);
    if (!waiting[k]) { waiting[k] = []; script("_ids/" + k + ".js"); }
    waiting[k].push(done);
  }
  function url(fl, fi, line) { return root + fl.files[fi][1] + "#L" + line; }
  function group(label) { return label.indexOf("port/") === 0 ? "port" : label.split("/")[0]; }

  function defsHtml(entry, fl) {
    if (!entry.d.length) return "<p class=\"none\">No definition in the indexed code.</p>";
    return "<ul class=\"defs\">" + entry.d.map(function (d) {
      var label = fl.files[d[0]][0];
      return "<li class=\"def\"><a href=\"" + esc(url(fl, d[0], d[1])) + "\">" + esc(label) + ":" + d[1] + "</a> " +
        "<span class=\"kind\">" + esc(d[2]) + (d[4] ? " " + esc(d[4]) : "") + "</span></li>";
    }).join("") + "</ul>";
  }
  function refsHtml(entry, fl, all) {
    var refs = all ? entry.r : entry.r.slice(0, FIRST), out = [], lastGroup = null, lastFile = null;
    refs.forEach(function (r) {
      var label = fl.files[r[0]][0], g = group(label);
      if (g !== lastGroup) {
        if (lastGroup !== null) out.push("</ul></section>");
        out.push("<section class=\"rg\"><h4>" + esc(g) + "</h4><ul class=\"refs\">");
        lastGroup = g; lastFile = null;
      }
      if (r[0] !== lastFile) {
        out.push("<li class=\"rf\">" + esc(label.slice(g === "port" ? 0 : g.length + 1)) + "</li>");
        lastFile = r[0];
      }
      out.push("<li><a href=\"" + esc(url(fl, r[0], r[1])) + "\">" + r[1] + "</a> <code>" + esc(r[2]) + "</code></li>");
    });
    if (lastGroup !== null) out.push("</ul></section>");
    var more = entry.r.length - refs.length;
    if (more > 0) out.push("<p><button type=\"button\" class=\"all\">Show all " + entry.r.length + " references</button></p>");
    if (entry.n > entry.r.length) out.push("<p class=\"none\">The index keeps the first " + entry.r.length + " of " + entry.n + ".</p>");
    return out.join("");
  }
  function render(box, name, entry, fl, heading) {
    box.innerHTML = (heading ? "<h3><code>" + esc(name) + "</code></h3>" : "") +
      "<p class=\"meta\">" + entry.d.length + " definition" + (entry.d.length === 1 ? "" : "s") + ", " +
      entry.n + " reference" + (entry.n === 1 ? "" : "s") + " · definitions from " + esc(fl.source) + "</p>" +
      "<h4>Definitions</h4>" + defsHtml(entry, fl) + "<h4>References</h4><div class=\"refbox\">" + refsHtml(entry, fl, false) + "</div>";
    var btn = box.querySelector("button.all");
    if (btn) btn.addEventListener("click", function () {
      box.querySelector(".refbox").innerHTML = refsHtml(entry, fl, true);
    });
  }
  window.ARCHIVE_IDENTS = {lookup: lookup, render: render, esc: esc};

  // the panel on code pages
  var HASH = "#i:", FRAG = /^#i:((?:type=)?[A-Za-z_][\w.-]*)$/;
  var panel = null, marked = [], current = null;
  function openPanel(name) {
    if (!panel) {
      panel = document.createElement("aside");
      panel.id = "xref-panel";
      panel.setAttribute("aria-label", "Definitions and references");
      panel.innerHTML = "<div class=\"xh\"><strong>Identifier</strong> <a class=\"search\" href=\"#\">search page</a>" +
        "<button type=\"button\" class=\"close\" aria-label=\"Close\">×</button></div><div class=\"xb\"></div>";
      document.body.appendChild(panel);
      panel.querySelector(".close").addEventListener("click", function () { closePanel(true); });
    }
    current = name;
    panel.querySelector("a.search").href = root + "identifiers.html?q=" + encodeURIComponent(name);
    var body = panel.querySelector(".xb");
    body.innerHTML = "<p class=\"meta\">Loading <code>" + esc(name) + "</code>…</p>";
    panel.hidden = false;
    document.body.classList.add("xref-open");
    lookup(name, function (entry, fl) { if (current === name) render(body, name, entry, fl, true); });
    mark(name);
  }
  function closePanel(byReader) {
    if (panel) panel.hidden = true;
    current = null;
    document.body.classList.remove("xref-open");
    mark(null);
    // closed by the reader: the address no longer names the identifier (Back still does)
    if (byReader && FRAG.test(location.hash)) history.replaceState(null, "", location.pathname + location.search);
  }
  function nameClass(el) {  // a name's link (<a href>, <a class="nf" href>; its href "" or #i:...)
    if (el.tagName !== "A") return NAME.test(el.classList[0] || "");
    var h = el.getAttribute("href");
    return h === "" || h.indexOf(HASH) === 0;
  }
  function mark(name) {
    marked.forEach(function (el) { el.classList.remove("idhl"); });
    marked = [];
    if (!name) return;
    var links = document.querySelectorAll(".listing pre.code a");
    for (var i = 0; i < links.length; i++) {
      if (links[i].textContent === name && nameClass(links[i])) { links[i].classList.add("idhl"); marked.push(links[i]); }
    }
  }
  function offsetAt(el, pt) {  // the character under the pointer, within el's text
    if (!pt) return -1;
    var r = document.caretRangeFromPoint ? document.caretRangeFromPoint(pt.clientX, pt.clientY) : null;
    if (!r && document.caretPositionFromPoint) {
      var p = document.caretPositionFromPoint(pt.clientX, pt.clientY);
      if (p) return el.contains(p.offsetNode) ? p.offset : -1;
    }
    return r && el.contains(r.startContainer) ? r.startOffset : -1;
  }
  // the name of a code token (a link or, in a cfg "type=" line, the value), the part under the
  // pointer ``pt`` of "Layer::fpropActs" (the last part when there is no pointer: the keyboard)
  function nameAt(el, pt) {
    if (!el || (el.tagName !== "SPAN" && el.tagName !== "A") || !el.closest(".listing pre.code, pre.excerpt")) return null;
    if (el.tagName === "A" && !nameClass(el)) return null;  // a line number, a cfg link to a class...
    var text = el.textContent, value = el.tagName === "SPAN" || el.parentElement.classList.contains("s");
    if (value) {  // a cfg layer type: "type=cmrnorm" (a link, or a span where cfgxref left it)
      var line = el.closest(".ln");
      var m = line && /^\s*type\s*=\s*([A-Za-z_][\w.-]*)\s*$/.exec(line.textContent);
      if (m && text.trim() === m[1]) return "type=" + m[1];  // the cfg's namespace (idents.CFG_TYPE)
      if (el.tagName === "SPAN" && !nameClass(el)) return null;
    }
    if (nameClass(el) && /^[A-Za-z_]\w*$/.test(text)) return text;
    if (nameClass(el) && /^[A-Za-z_][\w]*((::|\.)[A-Za-z_]\w*)+$/.test(text)) {
      var at = offsetAt(el, pt), pos = 0, parts = text.split(/(::|\.)/);
      for (var i = 0; i < parts.length; i++) {
        if (i % 2 === 0 && at >= pos && at <= pos + parts[i].length) return parts[i];
        pos += parts[i].length;
      }
      return parts[parts.length - 1];
    }
    return null;
  }
  function pointOf(ev) {
    if (ev.touches && ev.touches.length) return ev.touches[0];
    return ev.type === "focusin" || !ev.detail && ev.type === "click" ? null : ev;  // keyboard: no pointer
  }
  // the link's real href before any click: pointed at, touched or focused
  function aim(ev) {
    var el = ev.target;
    if (!el || el.tagName !== "A" || !nameClass(el)) return;
    var name = nameAt(el, pointOf(ev));
    if (!name) return;
    if (el.getAttribute("href") !== HASH + name) el.setAttribute("href", HASH + name);
    el.draggable = false;  // a drag across code selects text, as it did before names were links
  }
  document.addEventListener("mouseover", aim);
  document.addEventListener("focusin", aim);
  document.addEventListener("touchstart", aim, {passive: true});
  document.addEventListener("mousemove", function (ev) {  // "Layer::fpropActs": the part under it
    var el = ev.target;
    if (el && el.tagName === "A" && /::|\./.test(el.textContent)) aim(ev);
  });
  document.addEventListener("click", function (ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    var name = nameAt(ev.target, pointOf(ev));
    if (!name) return;
    ev.preventDefault();
    if (window.getSelection && String(window.getSelection()).length) return;  // selecting text, not clicking
    if (ev.target.tagName === "A") ev.target.setAttribute("href", HASH + name);
    openPanel(name);
    if (location.hash !== HASH + name) history.pushState(null, "", HASH + name);
  });
  function fromAddress() {  // #i:<name> opens its panel; another fragment closes it
    var m = FRAG.exec(location.hash);
    if (m && m[1] !== current) openPanel(m[1]);
    else if (!m && current !== null) closePanel(false);
  }
  window.addEventListener("hashchange", fromAddress);
  window.addEventListener("popstate", fromAddress);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fromAddress);
  else fromAddress();
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && current !== null) closePanel(true); });
})();
