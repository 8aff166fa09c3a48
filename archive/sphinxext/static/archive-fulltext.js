/* search-code.html: Pagefind (pagefind/pagefind.js, written by `make site`) over the source pages.
   Each result is a file; each of its matches is placed on its line: the match's word position
   (data.locations) falls after the anchor of the line that holds it (data.anchors: every
   <span id="L<n>"> with its word position and text), so the link is page#L<n>. */
const root = new URL("./", document.baseURI);
const input = document.getElementById("ftq");
const rel = document.getElementById("ftrel");
const status = document.getElementById("ftstatus");
const out = document.getElementById("ftres");
const LINES = 8, FILES = 40;
let pf = null;

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function linesOf(data) {
  const anchors = data.anchors.filter(a => /^L\d+$/.test(a.id)).sort((a, b) => a.location - b.location);
  const seen = new Map();
  for (const loc of data.locations) {
    let lo = 0, hi = anchors.length - 1, best = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (anchors[mid].location <= loc) { best = mid; lo = mid + 1; } else hi = mid - 1; }
    if (best >= 0 && !seen.has(anchors[best].id)) seen.set(anchors[best].id, anchors[best]);
  }
  return [...seen.values()];
}

async function load() {
  if (pf) return pf;
  pf = await import(new URL("pagefind/pagefind.js", root).href);
  await pf.options({baseUrl: root.pathname});
  const filters = await pf.filters();
  for (const r of Object.keys(filters.release || {}).sort()) rel.appendChild(el("option", {value: r}, r));
  return pf;
}

let seq = 0;
async function run() {
  const q = input.value.trim(), mine = ++seq;
  out.textContent = "";
  if (!q) { status.textContent = ""; return; }
  let api;
  try { api = await load(); } catch (e) {
    status.textContent = "The search index is not here: build it with make site, and serve the site over HTTP.";
    return;
  }
  const found = await api.search(q, rel.value ? {filters: {release: rel.value}} : {});
  if (mine !== seq || !found) return;
  status.textContent = found.results.length + (found.results.length === 1 ? " file" : " files");
  for (const r of found.results.slice(0, FILES)) {
    const data = await r.data();
    if (mine !== seq) return;
    const li = el("li");
    const url = data.url.replace(/\.html$/, ".html");
    li.appendChild(el("a", {href: url, class: "ftfile"}, data.meta.title || url));
    const lines = linesOf(data);
    const ul = el("ul", {class: "ftlines"});
    for (const a of lines.slice(0, LINES)) {
      const item = el("li");
      item.appendChild(el("a", {href: url + "#" + a.id, class: "ftline"}, a.id.slice(1)));
      item.appendChild(document.createTextNode(" " + a.text.slice(0, 160)));
      ul.appendChild(item);
    }
    if (lines.length > LINES) ul.appendChild(el("li", {class: "meta"}, "… " + (lines.length - LINES) + " more lines"));
    li.appendChild(ul);
    out.appendChild(li);
  }
}

let timer = null;
input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 200); });
rel.addEventListener("change", run);
const q0 = new URLSearchParams(location.search).get("q");
if (q0) { input.value = q0; run(); }
