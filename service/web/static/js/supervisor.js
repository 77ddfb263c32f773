// The live board: every live call from GET /v1/calls?live=true and /v1/ws/supervisor, flagged calls first.

import { byId, h } from "./dom.js";
import { clock, ruleTitle, wallTime } from "./format.js";
import { ListenIn } from "./listen.js";
import { api, explainRefusal, openStream, requireSession, showBanner } from "./session.js";

await requireSession(["supervisor"]);

const KEEP_ENDED_MS = 10 * 60 * 1000;
const UTTERANCE_POLL_MS = 8000;

const calls = new Map(); // id -> {call, t, at, severities, known, lastAlert, lastUtterance, endedAt, row}
const tbody = byId("rows");
const filters = { agent: byId("filter-agent"), flagged: byId("filter-flagged"), ended: byId("filter-ended") };

function entry(id) {
  let item = calls.get(id);
  if (!item) {
    item = { call: null, t: 0, at: 0, severities: { info: 0, warning: 0, critical: 0 }, lastAlert: null,
      lastUtterance: null, endedAt: null, row: null, cells: null, known: new Map() /* alert id -> severity */ };
    calls.set(id, item);
  }
  return item;
}

function upsert(call, t) {
  const item = entry(call.id);
  item.call = call;
  item.t = typeof t === "number" ? Math.max(t, call.duration || 0) : call.duration || 0;
  item.at = performance.now();
  if (call.status !== "live" && call.status !== "closing" && !item.endedAt) {
    item.endedAt = Date.now();
    if (listen.callId === call.id) listen.stop();
  }
  schedule();
}

function noteAlert(ev, live = true) {
  const item = entry(ev.call_id);
  if (item.known.has(ev.id)) return;
  item.known.set(ev.id, ev.severity);
  item.severities[ev.severity] = (item.severities[ev.severity] || 0) + 1;
  if (!item.lastAlert || ev.t >= item.lastAlert.t) item.lastAlert = ev;
  if (live && item.row) {
    item.row.classList.remove("fresh");
    void item.row.offsetWidth; // restart the highlight
    item.row.classList.add("fresh");
  }
  schedule();
}

function handle(ev) {
  if (ev.call) upsert(ev.call, ev.t);
  else if (ev.type === "alert") noteAlert(ev);
  else if (ev.type === "alert_retracted") {
    const item = calls.get(ev.call_id);
    if (item?.known.has(ev.id)) {
      // A retraction names the alert, not its severity: the count it came under is the one it leaves.
      const severity = item.known.get(ev.id);
      item.known.delete(ev.id);
      if (item.lastAlert?.id === ev.id) item.lastAlert = null;
      item.severities[severity] = Math.max(0, (item.severities[severity] || 0) - 1);
      schedule();
    }
  } else if (ev.type === "utterance") {
    entry(ev.call_id).lastUtterance = ev;
    schedule();
  }
}

// -- rendering ---------------------------------------------------------------------------------------

let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

function visible(item) {
  const call = item.call;
  if (!call) return false;
  const isLive = call.status === "live" || call.status === "closing";
  if (!isLive && (!filters.ended.checked || Date.now() - item.endedAt > KEEP_ENDED_MS)) return false;
  if (filters.flagged.checked && !call.flagged) return false;
  const wanted = filters.agent.value.trim().toLowerCase();
  return !wanted || call.agent_id.toLowerCase().includes(wanted);
}

function order(a, b) {
  const liveA = a.call.status === "live" || a.call.status === "closing";
  const liveB = b.call.status === "live" || b.call.status === "closing";
  return (liveB - liveA) || (b.call.flagged - a.call.flagged) ||
    (b.call.escalation_score - a.call.escalation_score) || (a.call.started - b.call.started);
}

function buildRow(item) {
  const id = item.call.id;
  const cells = {
    flag: h("td", { class: "flag-cell" }),
    agent: h("td", {}),
    duration: h("td", { class: "num" }),
    score: h("td", { class: "score-cell" }),
    alerts: h("td", { class: "alerts-cell" }),
    latest: h("td", { class: "latest" }),
    listen: h("button", { type: "button", "data-testid": "listen", "aria-pressed": "false" }, "Listen"),
  };
  cells.listen.addEventListener("click", () => toggleListen(id));
  const review = h("a", { class: "button", href: `/calls/${encodeURIComponent(id)}`, "data-testid": "review" },
    "Review");
  item.cells = cells;
  item.row = h("tr", { "data-testid": "call-row", "data-call-id": id },
    cells.flag, cells.agent, cells.duration, cells.score, cells.alerts, cells.latest,
    h("td", { class: "actions" }, cells.listen, review));
}

function fillRow(item) {
  const { call, cells, row } = item;
  const isLive = call.status === "live" || call.status === "closing";
  row.dataset.flagged = String(Boolean(call.flagged));
  row.dataset.status = isLive ? "live" : "ended";
  row.dataset.listening = String(listen.callId === call.id);
  cells.flag.replaceChildren(call.flagged ?
    h("span", { class: "flag", title: "Flagged for review" }, "⚑", h("span", { class: "visually-hidden" }, "Flagged")) :
    "");
  cells.agent.replaceChildren(h("div", { class: "agent-name" }, call.agent_id),
    h("div", { class: "call-sub" }, `${call.id} · ${isLive ? "since" : "ended"} ${wallTime(isLive ? call.started : call.ended)}`));
  cells.duration.textContent = clock(durationOf(item));
  const score = call.escalation_score || 0;
  const level = score >= 50 ? "high" : score >= 20 ? "rising" : "calm";
  cells.score.replaceChildren(h("div", { class: "score", title: (call.flags || []).map(ruleTitle).join(", ") },
    h("span", { class: "score-bar", role: "img", "aria-label": `Escalation score ${score} of 100` },
      h("span", { class: "score-fill", dataset: { level }, style: { width: `${Math.min(100, score)}%` } })),
    h("span", { class: "num" }, String(score))));
  const total = call.counts?.alert || 0;
  const chips = ["critical", "warning", "info"].filter((s) => item.severities[s] > 0)
    .map((s) => h("span", { class: "chip", dataset: { severity: s } }, `${item.severities[s]} ${s}`));
  cells.alerts.replaceChildren(h("div", { class: "chips" },
    h("span", { class: "chip num", "data-testid": "alert-total" }, `${total} ${total === 1 ? "alert" : "alerts"}`), chips));
  const latest = [];
  if (item.lastAlert) latest.push(h("div", {}, h("strong", {}, item.lastAlert.message)));
  if (item.lastUtterance) {
    const u = item.lastUtterance;
    latest.push(h("div", {}, h("span", { class: `leg-${u.leg}` }, u.leg === "agent" ? "Agent: " : "Customer: "),
      `“${u.text}”`));
  }
  cells.latest.replaceChildren(...(latest.length ? latest : ["—"]));
  cells.listen.disabled = !isLive;
  cells.listen.setAttribute("aria-pressed", String(listen.callId === call.id));
  cells.listen.textContent = listen.callId === call.id ? "Stop" : "Listen";
  cells.listen.setAttribute("aria-label", `${listen.callId === call.id ? "Stop listening to" : "Listen in to"} ` +
    `${call.agent_id}'s call`);
}

function durationOf(item) {
  const call = item.call;
  if (call.status === "live") return item.t + (performance.now() - item.at) / 1000;
  return call.duration || item.t;
}

function render() {
  const shown = [...calls.values()].filter(visible).sort(order);
  const focused = document.activeElement;
  for (const item of shown) {
    if (!item.row) buildRow(item);
    fillRow(item);
  }
  const current = [...tbody.children];
  const wanted = shown.map((item) => item.row);
  if (current.length !== wanted.length || current.some((row, i) => row !== wanted[i])) {
    tbody.replaceChildren(...wanted);
    if (focused && tbody.contains(focused)) focused.focus();
  }
  const live = [...calls.values()].filter((i) => i.call && i.call.status === "live");
  byId("total-live").textContent = String(live.length);
  const flaggedCount = live.filter((i) => i.call.flagged).length;
  byId("total-flagged").textContent = String(flaggedCount);
  document.title = `${flaggedCount ? `(${flaggedCount} flagged) ` : ""}Live board · callwatch`;
  byId("total-alerts").textContent = String(live.reduce((n, i) => n + (i.call.counts?.alert || 0), 0));
  byId("board-empty").hidden = shown.length > 0;
  byId("board-empty").textContent = calls.size && !shown.length ? "No calls match these filters." :
    "No live calls right now. They appear here the moment they start.";
}

setInterval(() => {
  for (const item of calls.values()) {
    if (item.cells && item.call.status === "live") item.cells.duration.textContent = clock(durationOf(item));
  }
}, 1000);

for (const input of Object.values(filters)) input.addEventListener("input", schedule);
byId("filters").addEventListener("submit", (event) => event.preventDefault());

// -- listen-in ---------------------------------------------------------------------------------------

const listen = new ListenIn({
  onState(state, detail) {
    const bar = byId("listen-bar");
    const item = calls.get(listen.callId);
    const who = item?.call ? `${item.call.agent_id}'s call` : "the call";
    bar.hidden = state === "ended" && !detail;
    byId("listen-status").textContent = state === "connecting" ? `Connecting to ${who}…` :
      state === "playing" ? `Listening to ${who}` : detail || "Listen-in ended";
    schedule();
  },
});
byId("listen-volume").addEventListener("input", (event) => listen.setVolume(Number(event.target.value)));
byId("listen-stop").addEventListener("click", () => listen.stop());

async function toggleListen(id) {
  if (listen.callId === id) listen.stop();
  else await listen.start(id);
  schedule();
}

// -- data --------------------------------------------------------------------------------------------

async function backfill(id) {
  // Alerts and words from before this page opened: the board stream only carries what happens next.
  try {
    const { events } = await api(`/v1/calls/${encodeURIComponent(id)}/events?type=alert,alert_retracted,utterance`);
    for (const ev of events) {
      if (ev.type === "alert") noteAlert(ev, false);
      else handle(ev);
    }
  } catch { /* the call may have ended and gone; the stream keeps the row right */ }
}

async function pollUtterances() {
  for (const item of calls.values()) {
    if (item.call?.status !== "live") continue;
    const since = item.lastUtterance ? item.lastUtterance.t + 0.001 : 0;
    try {
      const { events } = await api(`/v1/calls/${encodeURIComponent(item.call.id)}/events?type=utterance&since=${since}`);
      if (events.length) item.lastUtterance = events.at(-1);
    } catch { /* ended meanwhile */ }
  }
  schedule();
}

async function load() {
  try {
    const { calls: liveCalls } = await api("/v1/calls?live=true");
    for (const call of liveCalls) upsert(call, call.duration);
    await Promise.all(liveCalls.map((call) => backfill(call.id)));
  } catch (error) {
    showBanner(explainRefusal(error), "error");
  }
}

/** After a reconnect: catch up on alerts missed meanwhile, and settle calls that ended while we were away. */
async function resync() {
  let liveNow;
  try {
    liveNow = new Set((await api("/v1/calls?live=true")).calls.map((call) => call.id));
  } catch {
    return; // the stream's own probe reports refusals
  }
  for (const item of calls.values()) {
    if (item.call?.status !== "live") continue;
    if (liveNow.has(item.call.id)) backfill(item.call.id);
    else api(`/v1/calls/${encodeURIComponent(item.call.id)}`).then((call) => upsert(call, call.duration), () => {});
  }
}

await load();
const conn = byId("conn");
const STATE_WORDS = { open: "Live", connecting: "Connecting…", closed: "Reconnecting…" };
openStream("/v1/ws/supervisor", {
  onMessage: handle,
  onState: (state) => {
    conn.dataset.state = state;
    conn.textContent = STATE_WORDS[state];
  },
  onOpen: resync,
  probe: () => api("/v1/calls?live=true&limit=1"),
});
try {
  const health = await (await fetch("/healthz")).json();
  if (health.asr) setInterval(pollUtterances, UTTERANCE_POLL_MS);
} catch { /* no transcripts to show */ }
