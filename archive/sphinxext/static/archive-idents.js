/* Identifiers as links (like Elixir), offline. Clicking a name in any code listing opens a panel
   with its definitions (Universal Ctags) and every reference, grouped by release and file, each
   with its line as context; a cfg "type=cmrnorm" value leads to the code that reads that type.
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
  var panel = null, marked = [];
  function openPanel(name) {
    if (!panel) {
      panel = document.createElement("aside");
      panel.id = "xref-panel";
      panel.setAttribute("aria-label", "Definitions and references");
      panel.innerHTML = "<div class=\"xh\"><strong>Identifier</strong> <a class=\"search\" href=\"#\">search page</a>" +
        "<button type=\"button\" class=\"close\" aria-label=\"Close\">×</button></div><div class=\"xb\"></div>";
      document.body.appendChild(panel);
      panel.querySelector(".close").addEventListener("click", closePanel);
    }
    panel.querySelector("a.search").href = root + "identifiers.html?q=" + encodeURIComponent(name);
    var body = panel.querySelector(".xb");
    body.innerHTML = "<p class=\"meta\">Loading <code>" + esc(name) + "</code>…</p>";
    panel.hidden = false;
    document.body.classList.add("xref-open");
    lookup(name, function (entry, fl) { render(body, name, entry, fl, true); });
    mark(name);
  }
  function closePanel() {
    if (panel) panel.hidden = true;
    document.body.classList.remove("xref-open");
    mark(null);
  }
  function mark(name) {
    marked.forEach(function (el) { el.classList.remove("idhl"); });
    marked = [];
    if (!name) return;
    var spans = document.querySelectorAll(".listing pre.code span");
    for (var i = 0; i < spans.length; i++) {
      if (spans[i].textContent === name && NAME.test(spans[i].className)) { spans[i].classList.add("idhl"); marked.push(spans[i]); }
    }
  }
  function offsetAt(el, ev) {  // the character under the pointer, within el's text
    var r = document.caretRangeFromPoint ? document.caretRangeFromPoint(ev.clientX, ev.clientY) : null;
    if (!r && document.caretPositionFromPoint) {
      var p = document.caretPositionFromPoint(ev.clientX, ev.clientY);
      if (p) return el.contains(p.offsetNode) ? p.offset : -1;
    }
    return r && el.contains(r.startContainer) ? r.startOffset : -1;
  }
  function nameAt(el, ev) {
    if (!el || el.tagName !== "SPAN" || !el.closest(".listing pre.code, pre.excerpt")) return null;
    var text = el.textContent;
    if (NAME.test(el.className) && /^[A-Za-z_]\w*$/.test(text)) return text;
    if (NAME.test(el.className) && /^[A-Za-z_][\w]*((::|\.)[A-Za-z_]\w*)+$/.test(text)) {
      // Layer::fpropActs, self.layers: the part under the pointer (the last one if unknown)
      var at = offsetAt(el, ev), pos = 0, parts = text.split(/(::|\.)/);
      for (var i = 0; i < parts.length; i++) {
        if (i % 2 === 0 && at >= pos && at <= pos + parts[i].length) return parts[i];
        pos += parts[i].length;
      }
      return parts[parts.length - 1];
    }
    var line = el.closest(".ln");  // a cfg layer type: "type=cmrnorm"
    var m = line && /^\s*type\s*=\s*([A-Za-z_][\w.-]*)\s*$/.exec(line.textContent);
    if (m && text.trim() === m[1]) return "type=" + m[1];  // the cfg's namespace (idents.CFG_TYPE)
    return null;
  }
  document.addEventListener("click", function (ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    if (window.getSelection && String(window.getSelection()).length) return;  // selecting text, not clicking
    var name = nameAt(ev.target, ev);
    if (!name) return;
    ev.preventDefault();
    openPanel(name);
  });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") closePanel(); });
})();
