/* Identifier search over window.ARCHIVE_IDENTIFIERS (identifiers.js):
   {files: [[label, url]...], ids: {name: [count, [[file, line, defining]...]]}}.
   Exact matches first, then the other spelling of the same name (camelCase in the original,
   snake_case in the port), then prefix, then substring; case-insensitive. */
(function () {
  "use strict";
  var data = window.ARCHIVE_IDENTIFIERS || {files: [], ids: {}};
  var names = Object.keys(data.ids);
  var input = document.getElementById("idq");
  var out = document.getElementById("idres");
  if (!input || !out) return;

  function esc(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function search(q) {
    q = q.trim();
    if (!q) { out.innerHTML = ""; return; }
    var lq = q.toLowerCase(), nq = lq.replace(/_/g, ""), found = [];
    for (var i = 0; i < names.length; i++) {
      var ln = names[i].toLowerCase(), nn = ln.replace(/_/g, "");
      // exact, then the same name in the other spelling (fpropActs ~ fprop_acts), prefix, substring
      var rank = ln === lq ? 0 : nn === nq ? 1 : ln.indexOf(lq) === 0 ? 2 : ln.indexOf(lq) > 0 ? 3 : -1;
      if (rank >= 0) found.push([rank, names[i]]);
    }
    found.sort(function (a, b) { return a[0] - b[0] || data.ids[b[1]][0] - data.ids[a[1]][0] || (a[1] < b[1] ? -1 : 1); });
    var html = ["<p>" + found.length + " identifier" + (found.length === 1 ? "" : "s") + "</p>"];
    found.slice(0, 40).forEach(function (f) {
      var entry = data.ids[f[1]], items = [];
      entry[1].forEach(function (h) {
        var file = data.files[h[0]];
        items.push('<li' + (h[2] ? ' class="def"' : '') + '><a href="' + esc(file[1]) + '#L' + h[1] + '">' +
                   esc(file[0]) + ":" + h[1] + "</a>" + (h[2] ? " (definition)" : "") + "</li>");
      });
      var more = entry[0] > entry[1].length ? "<li>… " + (entry[0] - entry[1].length) + " more</li>" : "";
      html.push('<div class="hit"><code>' + esc(f[1]) + "</code> " + entry[0] + " occurrence" +
                (entry[0] === 1 ? "" : "s") + "<ul>" + items.join("") + more + "</ul></div>");
    });
    out.innerHTML = html.join("");
  }

  var params = new URLSearchParams(window.location.search);
  if (params.get("q")) input.value = params.get("q");
  input.addEventListener("input", function () { search(input.value); });
  search(input.value);
})();
