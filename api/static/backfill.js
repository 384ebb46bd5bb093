// Generated tracks on the page: the badge, how each was made (GET /v1/tracks/{id}/provenance),
// its score (GET /v1/tracks/{id}/score), "make more like this" (POST /v1/generate), and the
// banner that follows a generation job (GET /v1/jobs/{id}) and adds its tracks as they appear.
"use strict";

const POLL_MS = 1500;
const follow = { token: 0, timer: null, shown: new Set() };

function stopFollowing() {
  follow.token += 1;
  clearTimeout(follow.timer);
  $("#backfill").hidden = true;
}

function banner(title, progress, fraction, mode) {
  const box = $("#backfill");
  box.hidden = false;
  box.dataset.state = mode;  // running | done | failed
  $("#backfill-title").textContent = title;
  $("#backfill-progress").textContent = progress;
  $("#backfill-bar").style.width = `${Math.round(100 * Math.max(0.04, Math.min(1, fraction)))}%`;
}

function progressLine(job) {
  const p = job.progress || {};
  const bits = [];
  if (p.stage) bits.push(String(p.stage).replaceAll("_", " "));
  if (p.n_candidates !== undefined) bits.push(`${p.n_candidates} candidates`);
  if (p.stored !== undefined) bits.push(`${p.stored} kept`);
  if (job.status === "queued") bits.unshift("waiting for a worker");
  return bits.join(" · ");
}

// Follow one job until it is done or failed, inserting each stored track once.
// ``how``: {query, kind: "backfill" | "more", title}.
function followJob(start, how) {
  stopFollowing();
  follow.shown = new Set();
  const token = follow.token;
  const want = how.n || 4;
  const running = how.kind === "more" ? `Making more like “${how.title}”…`
                                      : "Nothing close in the catalog, generating…";
  banner(running, start.status === "queued" ? "queued" : "", 0.04, "running");
  $("#backfill").dataset.job = start.job_id;
  let failures = 0;
  const poll = async () => {
    if (token !== follow.token) return;
    try {
      const job = await call(`/v1/jobs/${start.job_id}`);
      if (token !== follow.token) return;
      failures = 0;
      insertJobTracks(job.tracks || []);
      const stored = (job.tracks || []).length;
      if (job.status === "done") {
        banner(stored ? `Made ${stored} new track${stored === 1 ? "" : "s"}${how.query ? ` for “${how.query}”` : ""}`
                      : "Generation finished, but no candidate was good and new enough to keep",
               "listen below; they are on the map in amber", 1, "done");
        return;
      }
      if (job.status === "failed") {
        banner("Generation failed", job.error || "no reason given", 1, "failed");
        return;
      }
      banner(running, progressLine(job), 0.1 + 0.9 * (stored / want), "running");
    } catch (e) {
      if (++failures >= 3) { banner("Lost track of the generation", e.message, 1, "failed"); return; }
    }
    follow.timer = setTimeout(poll, POLL_MS);
  };
  poll();
}

function insertJobTracks(tracks) {
  const list = $("#results"), fresh = [];
  for (const t of tracks) {
    if (follow.shown.has(t.id) || list.querySelector(`li.result[data-id='${t.id}']`)) continue;
    follow.shown.add(t.id);
    const li = resultItem(null, t);
    li.classList.add("fresh");
    list.prepend(li);
    fresh.push(t.id);
  }
  if (fresh.length) {
    mapAddFresh(fresh);
    mapShowResults(resultIds());
    setStatus(`${list.children.length} results, ${follow.shown.size} of them just made`);
  }
}

function decorateGenerated(li, track) {
  li.classList.add("generated");
  li.querySelector(".badge.gen").hidden = false;
  const dl = li.querySelector(".downloads");
  dl.hidden = false;
  dl.querySelector(".score-midi").href = `/v1/tracks/${track.id}/score?format=midi`;
  dl.querySelector(".score-xml").href = `/v1/tracks/${track.id}/score?format=musicxml`;
  const details = li.querySelector(".provenance");
  details.hidden = false;
  details.addEventListener("toggle", () => { if (details.open && !details.dataset.loaded) loadProvenance(track.id, details); });
}

function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.map(fmt).join(", ");
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${fmt(x)}`).join(" · ");
  return String(v);
}

function row(dl, term, value) {
  const dt = document.createElement("dt"), dd = document.createElement("dd");
  dt.textContent = term;
  if (value instanceof Node) dd.append(value); else dd.textContent = value;
  dl.append(dt, dd);
}

async function loadProvenance(id, details) {
  const dl = details.querySelector(".prov-body");
  dl.textContent = "Loading…";
  try {
    const p = await call(`/v1/tracks/${id}/provenance`);
    details.dataset.loaded = "yes";
    dl.textContent = "";
    row(dl, "Prompt", `“${p.prompt}”`);
    row(dl, "Generator", `${p.generator_id}${p.weights_id ? ` (${p.weights_id})` : ""}${p.seed !== null && p.seed !== undefined ? ` · seed ${p.seed}` : ""}`);
    if (p.scores && Object.keys(p.scores).length) row(dl, "Scores", fmt(p.scores));
    if (p.gates && Object.keys(p.gates).length) row(dl, "Novelty gates", fmt(p.gates));
    if (p.prior_samples_shape) row(dl, "Conditioned on", `${p.prior_samples_shape[0]} prior samples`);
    const near = p.neighbour_track_ids || [];
    if (near.length) {
      const span = document.createElement("span");
      for (const n of near.slice(0, 8)) {
        const b = document.createElement("button");
        b.type = "button"; b.className = "link"; b.textContent = `#${n}`;
        b.title = "Nearest catalog track it was checked against: show it on the map";
        b.addEventListener("mouseenter", () => mapHighlight(n));
        b.addEventListener("mouseleave", () => mapHighlight(null));
        b.addEventListener("click", () => similar(n, `track ${n}`));
        span.append(b, " ");
      }
      row(dl, "Nearest catalog tracks", span);
    }
    row(dl, "Made by", `job ${p.job_id}, candidate ${p.candidate_index + 1}`);
  } catch (e) {
    dl.textContent = `Provenance unavailable: ${e.message}`;
  }
}

async function makeMoreLike(track, button) {
  if (!apiKey()) {
    setStatus("Generating needs the server's API key: enter it under Filters → API key", true);
    $("#filters").open = true;
    $("#api-key").focus();
    return;
  }
  const query = state.lastText || `more like “${track.title}”`;
  button.disabled = true;
  try {
    const r = await call("/v1/generate", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query, like_track_id: track.id, n: 4 }),
    });
    followJob(r, { query, kind: "more", title: track.title, n: 4 });
  } catch (e) {
    setStatus(`Could not start generating: ${e.message}`, true);
  } finally {
    button.disabled = false;
  }
}

$("#backfill-close").addEventListener("click", stopFollowing);
