/* Sortable tables: a click (or Enter/Space) on a column head of a table.sortable sorts its rows
   by that column, again to reverse; a cell's data-sort, else its text, is the key; a head with
   data-type="num" sorts numbers (empty cells last). The head says the order (aria-sort). */
(function () {
  function key(row, i, num) {
    var c = row.cells[i];
    var v = c ? (c.getAttribute("data-sort") || c.textContent.trim()) : "";
    if (!num) return v;
    var n = parseFloat(v);
    return isNaN(n) ? null : n;
  }
  function sortBy(table, th) {
    var i = Array.prototype.indexOf.call(th.parentNode.children, th);
    var num = th.getAttribute("data-type") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, i, num), y = key(b, i, num);
      if (x === null || x === "") return (y === null || y === "") ? 0 : 1;
      if (y === null || y === "") return -1;
      var r = num ? x - y : String(x).localeCompare(String(y));
      return asc ? r : -r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  function init() {
    document.querySelectorAll("table.sortable thead th").forEach(function (th) {
      th.tabIndex = 0;
      th.classList.add("sort-head");
      th.title = "sort by this column";
      var table = th.closest("table");
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(table, th); }
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
