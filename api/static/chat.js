// The chat panel: a conversation with /v1/conversations beside the search results.
// Every result can be liked, disliked or asked "more like this"; the understood chips show what
// the server remembers, and × removes one. No inline script or HTML: the page's CSP forbids it.
"use strict";

const chat = { id: null };
const $c = (sel) => document.querySelector(sel);

function say(text, who) {
  const li = document.createElement("li");
  li.className = who;
  li.textContent = text;
  $c("#chat-log").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

async function post(url, body) {
  const r = await fetch(url, withKey({ method: "POST", headers: { "Content-Type": "application/json" },
                                       body: JSON.stringify(body) }));
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.detail || `${r.status} ${r.statusText}`);
  return data;
}

function renderChips(chips) {
  const box = $c("#chips");
  box.textContent = "";
  for (const chip of chips) {
    const span = document.createElement("span");
    span.className = "chip";
    span.dataset.key = chip.key;
    span.textContent = chip.label;
    const x = document.createElement("button");
    x.type = "button";
    x.className = "chip-x";
    x.setAttribute("aria-label", `remove ${chip.label}`);
    x.textContent = "×";
    x.addEventListener("click", () => send({ remove: [chip.key] }, `(removed: ${chip.label})`));
    span.appendChild(x);
    box.appendChild(span);
  }
}

function renderTurn(data) {
  say(data.reply, "bot");
  renderChips((data.understood && data.understood.chips) || []);
  const list = $c("#conv-results");
  list.textContent = "";
  for (const item of data.results) {
    const li = $c("#conv-tpl").content.firstElementChild.cloneNode(true);
    const t = item.track;
    li.dataset.id = t.id;
    li.querySelector(".pos").textContent = `#${item.position}`;
    li.querySelector(".title").textContent = t.title;
    li.querySelector(".meta").textContent = metaLine(t);
    li.querySelector(".badge.gen").hidden = t.origin !== "generated";
    li.querySelector(".why").textContent = item.why.join("; ");
    li.querySelector("audio").src = t.audio_url;
    li.querySelector(".conv-more").addEventListener("click",
      () => send({ text: `more like #${item.position}` }, `more like #${item.position}`));
    li.querySelector(".conv-like").addEventListener("click",
      () => send({ liked: [t.id] }, `👍 ${t.title}`));
    li.querySelector(".conv-dislike").addEventListener("click",
      () => send({ disliked: [t.id] }, `👎 ${t.title}`));
    list.appendChild(li);
  }
}

async function send(body, shown) {
  say(shown, "user");
  try {
    const data = chat.id === null
      ? await post("/v1/conversations", { text: body.text || "" })
      : await post(`/v1/conversations/${chat.id}/messages`, body);
    chat.id = data.id;
    history.replaceState(null, "", `#c=${data.id}`);  // a link that resumes the conversation
    renderTurn(data);
  } catch (err) {
    say(`Could not do that: ${err.message}`, "error");
  }
}

$c("#chat-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $c("#chat-input").value.trim();
  if (!text) return;
  $c("#chat-input").value = "";
  send({ text }, text);
});

// Resume a conversation named in the address (#c=<id>): its messages and chips come back.
async function resume() {
  const m = /^#c=([0-9a-f]{32})$/.exec(location.hash);
  if (!m) return;
  try {
    const r = await fetch(`/v1/conversations/${m[1]}`, withKey());
    const data = await r.json();
    if (!r.ok) throw new Error(data.detail || r.statusText);
    chat.id = data.id;
    for (const msg of data.messages) say(msg.text || "(likes)", msg.role === "user" ? "user" : "bot");
    renderChips(data.chips);
    $c("#chat").dataset.resumed = "yes";
  } catch (err) {
    say(`Could not resume: ${err.message}`, "error");
  }
}
resume();

$c("#chat-new").addEventListener("click", () => {
  chat.id = null;
  history.replaceState(null, "", location.pathname);
  $c("#chat-log").textContent = "";
  $c("#chips").textContent = "";
  $c("#conv-results").textContent = "";
});
