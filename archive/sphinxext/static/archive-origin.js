/* Who wrote each line (source pages with the joined history, revisions.py): the button in the
   origin summary shows or hides a column of revisions, each linked to its page; a line's
   revision is data-r, an index into the page's JSON (label, date, summary, era). A run of lines
   from the same revision shows its label once, faded after. No network, no dependencies. */
(function () {
  "use strict";
  var built = false;

  function build() {
    var holder = document.querySelector("script.origin-data");
    if (!holder) return;
    var revs = JSON.parse(holder.textContent);
    var lines = document.querySelectorAll(".ln[data-r]");
    var prev = null;
    for (var i = 0; i < lines.length; i++) {
      var k = lines[i].getAttribute("data-r");
      var r = revs[parseInt(k, 10)];
      if (!r) continue;
      var a = document.createElement("a");
      a.className = "org" + (k === prev ? " same" : "");
      a.href = r[0];
      a.textContent = r[1];
      a.title = r[1] + " · " + r[2] + " · " + r[3];
      var num = lines[i].querySelector(".lno");
      lines[i].insertBefore(a, num ? num.nextSibling : lines[i].firstChild);
      prev = k;
    }
    built = true;
  }

  function toggle(ev) {
    var on = !document.body.classList.contains("show-origin");
    if (on && !built) build();
    document.body.classList.toggle("show-origin", on);
    var buttons = document.querySelectorAll("button.origin-toggle");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute("aria-pressed", on ? "true" : "false");
      buttons[i].textContent = on ? "hide origin column" : "show origin column";
    }
    try { window.localStorage.setItem("archive-origin", on ? "1" : "0"); } catch (e) { /* private mode */ }
  }

  function init() {
    var buttons = document.querySelectorAll("button.origin-toggle");
    for (var i = 0; i < buttons.length; i++) buttons[i].addEventListener("click", toggle);
    var want = null;
    try { want = window.localStorage.getItem("archive-origin"); } catch (e) { /* private mode */ }
    if (buttons.length && want === "1") toggle();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
