/* Identifier search over window.ARCHIVE_IDENTIFIERS (identifiers.js): {shards, names: {name:
   [references, definitions]}}. Exact matches first, then the other spelling of the same name
   (camelCase in the original, snake_case in the port), then prefix, then substring;
   case-insensitive. The first matches are opened with their definitions and references
   (archive-idents.js loads their shards); every other match opens on a click. */
(function () {
  "use strict";
  var data = window.ARCHIVE_IDENTIFIERS || {names: {}};
  var names = Object.keys(data.names);
  var input = document.getElementById("idq");
  var out = document.getElementById("idres");
  var X = window.ARCHIVE_IDENTS;
  if (!input || !out || !X) return;
  var OPEN = 3, SHOWN = 60;

  function search(q) {
    q = q.trim();
    if (!q) { out.innerHTML = ""; return; }
    var lq = q.toLowerCase(), nq = lq.replace(/_/g, ""), found = [];
    for (var i = 0; i < names.length; i++) {
      var ln = names[i].toLowerCase(), nn = ln.replace(/_/g, "");
      var rank = ln === lq ? 0 : nn === nq ? 1 : ln.indexOf(lq) === 0 ? 2 : ln.indexOf(lq) > 0 ? 3 : -1;
      if (rank >= 0) found.push([rank, names[i]]);
    }
    found.sort(function (a, b) {
      return a[0] - b[0] || data.names[b[1]][0] - data.names[a[1]][0] || (a[1] < b[1] ? -1 : 1);
    });
    var html = ["<p>" + found.length + " identifier" + (found.length === 1 ? "" : "s") + "</p>"];
    found.slice(0, SHOWN).forEach(function (f, i) {
      var c = data.names[f[1]];
      html.push("<details class=\"hit\"" + (i < OPEN ? " open" : "") + " data-name=\"" + X.esc(f[1]) + "\"><summary><code>" +
                X.esc(f[1]) + "</code> " + c[0] + " reference" + (c[0] === 1 ? "" : "s") + ", " + c[1] +
                " definition" + (c[1] === 1 ? "" : "s") + "</summary><div class=\"xb\"></div></details>");
    });
    if (found.length > SHOWN) html.push("<p>… and " + (found.length - SHOWN) + " more: type more of the name.</p>");
    out.innerHTML = html.join("");
    var hits = out.querySelectorAll("details.hit");
    for (var j = 0; j < hits.length; j++) {
      (function (d) {
        var fill = function () {
          if (d.getAttribute("data-done")) return;
          d.setAttribute("data-done", "1");
          X.lookup(d.getAttribute("data-name"), function (entry, fl) {
            X.render(d.querySelector(".xb"), d.getAttribute("data-name"), entry, fl, false);
          });
        };
        if (d.open) fill();
        d.addEventListener("toggle", function () { if (d.open) fill(); });
      })(hits[j]);
    }
  }

  var params = new URLSearchParams(window.location.search);
  if (params.get("q")) input.value = params.get("q");
  input.addEventListener("input", function () { search(input.value); });
  search(input.value);
})();
