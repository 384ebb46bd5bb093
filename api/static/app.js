// tunescope web page: plain JS against the /v1 API, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { lastQuery: null, lastText: "", offset: 0, k: 10, liked: new Set(), disliked: new Set() };
const KEY_STORE = "tunescope.api-key";  // this tab only (sessionStorage): a key is a secret

// The filter form is built from the server's one declaration of its filter fields, so a new
// filter on the server appears here without touching the page.
async function buildFilterForm() {
  const { filters } = await call("/v1/filters");
  const grid = $("#filter-fields");
  for (const f of filters) {
    if (f.name === "origin") { grid.appendChild(originControl(f)); continue; }
    const label = document.createElement("label");
    label.title = f.help;
    label.append(`${f.name[0].toUpperCase()}${f.name.slice(1)}${f.unit ? ` (${f.unit})` : ""} `);
    const input = (param, placeholder) => {
      const el = document.createElement("input");
      el.id = `f-${param}`; el.dataset.param = param; el.dataset.kind = f.kind; el.dataset.body = f.name;
      el.placeholder = placeholder;
      if (f.kind === "range") { el.type = "number"; el.min = f.lo; el.max = f.hi; el.dataset.body = param; }
      return el;
    };
    if (f.kind === "range") label.append(input(f.min_param, "min"), " – ", input(f.max_param, "max"));
    else {
      const el = input(f.param, f.values && f.values.length ? f.values.slice(0, 3).join(", ") : "any");
      if (f.values && f.values.length) {
        const list = document.createElement("datalist"); list.id = `values-${f.name}`;
        for (const v of f.values) { const o = document.createElement("option"); o.value = v; list.appendChild(o); }
        el.setAttribute("list", list.id); label.appendChild(list);
      }
      label.append(el);
    }
    grid.appendChild(label);
  }
}

// Origin is a three-way choice, not free text: all, the catalog's own tracks, or generated ones.
function originControl(f) {
  const box = document.createElement("div");
  box.className = "seg"; box.setAttribute("role", "radiogroup"); box.title = f.help;
  box.append("Origin ");
  for (const [value, text] of [["", "all"], ["catalog", "catalog"], ["generated", "generated"]]) {
    const id = `f-origin-${text}`;
    const radio = document.createElement("input");
    Object.assign(radio, { type: "radio", name: "origin", id, value, checked: value === "" });
    radio.dataset.param = f.param; radio.dataset.kind = f.kind; radio.dataset.body = f.name;
    radio.addEventListener("change", () => {
      if (typeof mapSetOrigin === "function") mapSetOrigin(value);
      if (state.lastQuery) run(state.lastQuery);  // a choice of three: apply it at once
    });
    const label = document.createElement("label"); label.htmlFor = id; label.textContent = text;
    box.append(radio, label);
  }
  return box;
}

function filterInputs() {
  return [...document.querySelectorAll("#filter-fields [data-param]")]
    .filter((el) => (el.type !== "radio" || el.checked) && el.value.trim());
}

function filterParams() {
  const p = new URLSearchParams();
  for (const el of filterInputs()) p.append(el.dataset.param, el.value.trim());
  if ($("#f-diverse").checked) p.append("max_per_piece", "1");
  return p;
}

function filterBody() {
  const f = {};
  for (const el of filterInputs()) {
    f[el.dataset.body] = el.dataset.kind === "range" ? Number(el.value) : [el.value.trim()];
  }
  return f;
}

function setStatus(text, weak = false) {
  const s = $("#status"); s.textContent = text; s.classList.toggle("weak", weak);
}

function apiKey() { return (sessionStorage.getItem(KEY_STORE) || "").trim(); }

// Every call carries the key when one was given: a server may require it for reads too.
function withKey(options = {}) {
  const key = apiKey();
  return key ? { ...options, headers: { ...(options.headers || {}), "X-API-Key": key } } : options;
}

async function call(url, options = {}) {
  const r = await fetch(url, withKey(options));
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || `${r.status} ${r.statusText}`);
  return body;
}

function metaLine(t) {
  const bits = [t.artist, t.collection, t.key && `${t.key} ${t.mode || ""}`.trim(), t.meter,
    t.tempo_bpm && `${Math.round(t.tempo_bpm)} bpm`, t.duration_s && `${t.duration_s.toFixed(1)} s`,
    (t.instruments || []).join(", "), (t.tags || []).join(", ")];
  return bits.filter(Boolean).join(" · ");
}

// One result card. ``score`` is null for a track that arrived from a generation job (it was
// not ranked against the query; the job re-ranked it against the query instead).
function resultItem(score, track) {
  const li = $("#result-tpl").content.firstElementChild.cloneNode(true);
  li.dataset.id = track.id;
  li.dataset.origin = track.origin || "catalog";
  li.querySelector(".title").textContent = track.title;
  li.querySelector(".score").textContent = score === null ? "new" : score.toFixed(3);
  li.querySelector(".meta").textContent = metaLine(track);
  li.querySelector("audio").src = track.audio_url;
  li.querySelector(".more-like-this").addEventListener("click", () => similar(track.id, track.title));
  li.querySelector(".make-more").addEventListener("click", (e) => makeMoreLike(track, e.currentTarget));
  const up = li.querySelector(".thumb-up"), down = li.querySelector(".thumb-down");
  up.classList.toggle("on", state.liked.has(track.id));
  down.classList.toggle("on", state.disliked.has(track.id));
  up.addEventListener("click", () => feedback(track.id, true, up, down));
  down.addEventListener("click", () => feedback(track.id, false, up, down));
  if (track.origin === "generated") decorateGenerated(li, track);
  li.addEventListener("mouseenter", () => mapHighlight(track.id));
  li.addEventListener("mouseleave", () => mapHighlight(null));
  return li;
}

function resultIds() { return [...document.querySelectorAll("#results li.result")].map((li) => Number(li.dataset.id)); }

function render(data, append) {
  const list = $("#results");
  if (!append) list.textContent = "";
  for (const { score, track } of data.results) list.appendChild(resultItem(score, track));
  const n = list.children.length;
  const spread = data.query && data.query.spread !== undefined ? ` — seed spread ${data.query.spread.toFixed(2)} (query uncertainty)` : "";
  const weak = data.weak_match && !(data.backfill && data.backfill.job_id) ? " — weak match: nothing in the catalog is very close" : "";
  setStatus(n ? `${n} result${n === 1 ? "" : "s"}${spread}${weak}` : "No results", data.weak_match && !(data.backfill && data.backfill.job_id));
  $("#more-btn").hidden = data.results.length < state.k;
  mapShowResults(resultIds());
  // "limited" (past the hourly cap) has no job to follow: the weak-match note says it all.
  if (!append && data.backfill && data.backfill.job_id) followJob(data.backfill, { query: state.lastText, kind: "backfill" });
}

async function run(query, append = false) {
  state.lastQuery = query;
  if (!append) { state.offset = 0; stopFollowing(); }
  try {
    setStatus("Searching…");
    render(await query(state.offset), append);
  } catch (e) { setStatus(`Error: ${e.message}`, true); }
}

function textSearch(q, examples = false) {
  state.lastText = q;
  mapLocate(q);
  run((offset) => {
    const p = filterParams(); p.set("q", q); p.set("k", state.k); p.set("offset", offset);
    const generative = $("#f-generative").checked;
    if (generative) {
      for (const n of $("#f-negative").value.split(",")) if (n.trim()) p.append("negative", n.trim());
      if (examples) {  // thumbs steer the prior: liked tracks toward, disliked away
        for (const id of state.liked) p.append("like", id);
        for (const id of state.disliked) p.append("unlike", id);
      }
    }
    return call(`${generative ? "/v1/search/generative" : "/v1/search"}?${p}`);
  });
}

function similar(id, title) {
  $("#q").value = "";
  state.lastText = "";
  mapLocateTrack(id);
  run((offset) => {
    const p = filterParams(); p.set("k", state.k); p.set("offset", offset);
    return call(`/v1/tracks/${id}/similar?${p}`);
  });
  setStatus(`More like “${title}”…`);
}

function audioSearch(file) {
  state.lastText = "";
  mapLocateTrack(null);
  run((offset) => {
    const p = filterParams(); p.set("k", state.k); p.set("offset", offset);
    const form = new FormData(); form.append("file", file);
    return call(`/v1/search/audio?${p}`, { method: "POST", body: form });
  });
}

function recommend() {
  if (!state.liked.size) { setStatus("Give at least one 👍 first", true); return; }
  const q = $("#q").value.trim();
  if ($("#f-generative").checked && q) { textSearch(q, true); return; }  // query + examples
  run((offset) => call("/v1/recommend", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ positive: [...state.liked], negative: [...state.disliked],
      k: state.k, offset, filters: filterBody(), strategy: "average_vector" }),
  }));
}

function feedback(id, like, up, down) {
  const [mine, other] = like ? [state.liked, state.disliked] : [state.disliked, state.liked];
  if (mine.has(id)) mine.delete(id); else { mine.add(id); other.delete(id); }
  up.classList.toggle("on", state.liked.has(id));
  down.classList.toggle("on", state.disliked.has(id));
  $("#feedback").hidden = !(state.liked.size || state.disliked.size);
  $("#feedback-summary").textContent = `${state.liked.size} 👍 · ${state.disliked.size} 👎`;
  if (like && state.liked.has(id)) recommend();  // a thumbs up refreshes recommendations at once
}

$("#search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("#q").value.trim();
  if (q) textSearch(q);
});
$("#upload").addEventListener("change", (e) => { if (e.target.files[0]) audioSearch(e.target.files[0]); });
$("#recommend-btn").addEventListener("click", recommend);
$("#clear-feedback").addEventListener("click", () => {
  state.liked.clear(); state.disliked.clear(); $("#feedback").hidden = true;
  document.querySelectorAll(".on").forEach((b) => b.classList.remove("on"));
});
$("#api-key").value = apiKey();
$("#api-key").addEventListener("change", (e) => sessionStorage.setItem(KEY_STORE, e.target.value.trim()));
$("#more-btn").addEventListener("click", () => {
  state.offset += state.k;
  if (state.lastQuery) run(state.lastQuery, true);
});

// Deep link: /?q=... runs that search on load, so a result page can be shared or bookmarked.
const initialQuery = new URLSearchParams(location.search).get("q");
buildFilterForm().catch((e) => setStatus(`Filters unavailable: ${e.message}`, true)).then(() => {
  if (initialQuery) {
    $("#q").value = initialQuery;
    textSearch(initialQuery);
  }
});
