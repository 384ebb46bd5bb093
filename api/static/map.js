// The catalog map: every indexed track as a point (GET /v1/catalog/map), the catalog's density
// and its thin places, the current results, and where the query and the prior's samples land
// (GET /v1/catalog/map/locate). Generated tracks are amber; the projection is fitted on the
// catalog, so they appear without moving anyone. Hover a point to see it, click for more like it.
"use strict";

const GEN = "#d9822b", HIT = "#2c6e9b", INK = "#1d232a";
const MUTED_HUES = [205, 150, 25, 275, 95, 340, 55, 180];
const map = {
  data: null, byId: new Map(), colours: new Map(), results: new Set(), fresh: new Set(),
  query: null, prior: [], focus: null, hover: null, highlight: null, origin: "",
  view: null, titles: new Map(), pattern: null,
};
const canvas = $("#map");
const ctx = canvas.getContext("2d");

async function refreshMap() {
  try {
    const data = await call("/v1/catalog/map");
    if (map.data && map.data.index_version === data.index_version) return;
    map.data = data;
    map.byId = new Map(data.points.map((p) => [p.id, p]));
    const counts = new Map();
    for (const p of data.points) if (p.origin !== "generated") counts.set(p.collection, (counts.get(p.collection) || 0) + 1);
    const ranked = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a));
    map.colours = new Map(ranked.map((c, i) => [c, `hsl(${MUTED_HUES[i % MUTED_HUES.length]} 22% 46%)`]));
    const gen = data.points.filter((p) => p.origin === "generated").length;
    $("#map-info").textContent = `${data.points.length} tracks${gen ? ` · ${gen} generated` : ""}`;
    canvas.dataset.version = data.index_version;
    drawMap();
  } catch (e) {
    $("#map-note").textContent = `Map unavailable: ${e.message}`;
  }
}

// World (projection) coordinates -> canvas pixels, equal scale on both axes so distances on
// the map mean the same in every direction; the frame grows to hold the query if it lies out.
function computeView() {
  const d = map.data;
  let x0 = d.bounds.x0, y0 = d.bounds.y0, x1 = d.bounds.x1, y1 = d.bounds.y1;
  for (const p of [map.query, ...map.prior].filter(Boolean)) {
    x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y);
  }
  const pad = 14 * devicePixelRatio, W = canvas.width - 2 * pad, H = canvas.height - 2 * pad;
  const s = Math.min(W / (x1 - x0 || 1), H / (y1 - y0 || 1));
  const ox = pad + (W - s * (x1 - x0)) / 2, oy = pad + (H - s * (y1 - y0)) / 2;
  map.view = { px: (x) => ox + (x - x0) * s, py: (y) => canvas.height - (oy + (y - y0) * s) };
}

function thinPattern() {
  if (map.pattern) return map.pattern;
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8 * devicePixelRatio;
  const t = tile.getContext("2d");
  t.strokeStyle = "rgba(217,130,43,0.55)"; t.lineWidth = devicePixelRatio;
  t.beginPath(); t.moveTo(0, tile.height); t.lineTo(tile.width, 0); t.stroke();
  return (map.pattern = ctx.createPattern(tile, "repeat"));
}

function drawDensity() {
  const g = map.data.density, v = map.view;
  const img = document.createElement("canvas");
  img.width = g.nx; img.height = g.ny;
  const ictx = img.getContext("2d"), pixels = ictx.createImageData(g.nx, g.ny);
  for (let iy = 0; iy < g.ny; iy++) {
    for (let ix = 0; ix < g.nx; ix++) {
      const o = 4 * ((g.ny - 1 - iy) * g.nx + ix);  // row 0 of the grid is the bottom
      pixels.data.set([44, 110, 155, Math.round(70 * g.values[iy][ix])], o);
    }
  }
  ictx.putImageData(pixels, 0, 0);
  const left = v.px(g.x0), top = v.py(g.y1), w = v.px(g.x1) - left, h = v.py(g.y0) - top;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(img, left, top, w, h);
  ctx.fillStyle = thinPattern();
  for (const [ix, iy] of g.thin) {
    ctx.fillRect(left + (ix * w) / g.nx, top + ((g.ny - 1 - iy) * h) / g.ny, w / g.nx + 0.5, h / g.ny + 0.5);
  }
}

function dot(x, y, r, fill, stroke, lw = 1) {
  ctx.beginPath(); ctx.arc(x, y, r * devicePixelRatio, 0, 2 * Math.PI);
  if (fill) { ctx.fillStyle = fill; ctx.fill(); }
  if (stroke) { ctx.strokeStyle = stroke; ctx.lineWidth = lw * devicePixelRatio; ctx.stroke(); }
}

function star(x, y, r, fill) {
  const k = devicePixelRatio;
  ctx.beginPath();
  for (let i = 0; i < 10; i++) {
    const a = -Math.PI / 2 + (i * Math.PI) / 5, rr = (i % 2 ? r * 0.45 : r) * k;
    ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
  }
  ctx.closePath(); ctx.fillStyle = fill; ctx.fill();
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.5 * k; ctx.stroke();
}

function drawPoints() {
  const v = map.view, dim = (o) => map.origin && map.origin !== o;
  const n = map.data.points.length, r = n < 300 ? 3.4 : n < 3000 ? 2.5 : n < 15000 ? 1.9 : 1.5;
  const gens = [];
  ctx.globalAlpha = 1;
  for (const p of map.data.points) {  // catalog first, generated on top
    if (p.origin === "generated") { gens.push(p); continue; }
    ctx.globalAlpha = dim("catalog") ? 0.18 : 0.85;
    dot(v.px(p.x), v.py(p.y), r, map.colours.get(p.collection) || "#7d868e");
  }
  for (const p of gens) {
    ctx.globalAlpha = dim("generated") ? 0.25 : 1;
    if (map.fresh.has(p.id)) dot(v.px(p.x), v.py(p.y), r + 6, null, "rgba(217,130,43,0.55)", 2);
    dot(v.px(p.x), v.py(p.y), r + 1.4, GEN, "#fff", 1);
  }
  ctx.globalAlpha = 1;
  for (const id of map.results) {
    const p = map.byId.get(id);
    if (p) dot(v.px(p.x), v.py(p.y), 5.5, null, HIT, 1.6);
  }
}

function drawQuery() {
  const v = map.view, q = map.query || map.focus;
  if (!q) return;
  const qx = v.px(q.x), qy = v.py(q.y);
  ctx.setLineDash([3 * devicePixelRatio, 3 * devicePixelRatio]);
  ctx.strokeStyle = "rgba(44,110,155,0.45)"; ctx.lineWidth = devicePixelRatio;
  for (const p of map.prior) { ctx.beginPath(); ctx.moveTo(qx, qy); ctx.lineTo(v.px(p.x), v.py(p.y)); ctx.stroke(); }
  ctx.setLineDash([]);
  for (const p of map.prior) dot(v.px(p.x), v.py(p.y), 3.5, "rgba(255,255,255,0.8)", HIT, 1.5);
  star(qx, qy, 8, HIT);
}

function drawMap() {
  const rect = canvas.parentElement.getBoundingClientRect();
  const w = Math.max(200, Math.round(rect.width * devicePixelRatio));
  const h = Math.round(w * 0.72);
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; map.pattern = null; }
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!map.data) return;
  computeView();
  drawDensity();
  drawPoints();
  drawQuery();
  const hl = map.byId.get(map.highlight) || map.byId.get(map.hover && map.hover.id);
  if (hl) dot(map.view.px(hl.x), map.view.py(hl.y), 8.5, null, INK, 2);
  const ds = canvas.dataset;  // what is drawn, for people with screen readers and for tests
  ds.points = map.data.points.length;
  ds.generated = map.data.points.filter((p) => p.origin === "generated").length;
  ds.results = [...map.results].filter((id) => map.byId.has(id)).length;
  ds.query = map.query ? "text" : map.focus ? "track" : "none";
  ds.prior = map.prior.length;
}

// Hover and highlight redraw at most once a frame (20,000 points take a few milliseconds).
let drawPending = false;
function redraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => { drawPending = false; drawMap(); });
}

function mapShowResults(ids) { map.results = new Set(ids); drawMap(); }
function mapHighlight(id) { map.highlight = id; redraw(); }
function mapSetOrigin(origin) { map.origin = origin; drawMap(); }
function mapAddFresh(ids) { for (const id of ids) map.fresh.add(id); refreshMap().then(drawMap); }

function describeLanding(body) {
  const thin = map.data ? map.data.density.thin_level : 0.2;
  if (!body.prior.length) {
    return body.query.density < thin ? "Your description lands where the catalog is thin." : "";
  }
  const mean = body.prior.reduce((a, p) => a + p.density, 0) / body.prior.length;
  return mean < thin
    ? `The prior's ${body.prior.length} guesses for this query land where the catalog is thin — a good place for new tracks.`
    : `The prior's ${body.prior.length} guesses land among the catalog's tracks (density ${mean.toFixed(2)}).`;
}

async function mapLocate(q) {
  map.focus = null;
  try {
    const body = await call(`/v1/catalog/map/locate?${new URLSearchParams({ q, seeds: 8 })}`);
    map.query = body.query; map.prior = body.prior;
    $("#map-note").textContent = describeLanding(body);
    if (map.data && body.index_version !== map.data.index_version) await refreshMap();
  } catch (e) {
    map.query = null; map.prior = [];
    $("#map-note").textContent = `Could not place the query: ${e.message}`;
  }
  drawMap();
}

function mapLocateTrack(id) {
  map.query = null; map.prior = [];
  map.focus = id === null ? null : map.byId.get(id) || null;
  $("#map-note").textContent = "";
  drawMap();
}

function nearest(ev) {
  if (!map.view) return null;
  const r = canvas.getBoundingClientRect();
  const x = (ev.clientX - r.left) * devicePixelRatio, y = (ev.clientY - r.top) * devicePixelRatio;
  let best = null, bestD = (10 * devicePixelRatio) ** 2;
  for (const p of map.data.points) {
    const d = (map.view.px(p.x) - x) ** 2 + (map.view.py(p.y) - y) ** 2;
    if (d < bestD) { best = p; bestD = d; }
  }
  return best;
}

async function showTip(p, ev) {
  const tip = $("#map-tip");
  if (!p) { tip.hidden = true; return; }
  const wrap = canvas.parentElement.getBoundingClientRect();
  tip.style.left = `${Math.min(ev.clientX - wrap.left + 12, wrap.width - 180)}px`;
  tip.style.top = `${ev.clientY - wrap.top + 12}px`;
  const kind = p.origin === "generated" ? "generated" : p.collection || "catalog";
  tip.textContent = `#${p.id} · ${kind}`;
  tip.hidden = false;
  if (!map.titles.has(p.id)) {
    map.titles.set(p.id, call(`/v1/tracks/${p.id}`).then((t) => t.title).catch(() => ""));
  }
  const title = await map.titles.get(p.id);
  if (map.hover === p && title) tip.textContent = `${title} · ${kind} — click for more like it`;
}

canvas.addEventListener("mousemove", (ev) => {
  if (!map.data) return;
  const p = nearest(ev);
  if (p !== map.hover) { map.hover = p; redraw(); }
  canvas.style.cursor = p ? "pointer" : "default";
  showTip(p, ev);
});
canvas.addEventListener("mouseleave", () => { map.hover = null; $("#map-tip").hidden = true; redraw(); });
canvas.addEventListener("click", async (ev) => {
  const p = map.data && nearest(ev);
  if (!p) return;
  const title = (await (map.titles.get(p.id) || Promise.resolve(""))) || `track ${p.id}`;
  similar(p.id, title);
});
new ResizeObserver(redraw).observe(canvas.parentElement);
refreshMap();
