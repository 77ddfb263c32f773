// Review of one call, live or finished: recording with alert markers, transcript in sync, voice plots,
// summary, supervisor notes, export.

import { byId, h } from "./dom.js";
import { REVIEW_LABELS } from "./coaching.js";
import { exportCall } from "./export.js";
import { clock, legName, percent, ruleTitle, wallDateTime } from "./format.js";
import { drawPlot, plotFraction, plotTimeAt } from "./plots.js";
import { api, explainRefusal, HttpError, openStream, requireSession, showBanner } from "./session.js";
import { raisedEpisodes, summarize } from "./summary.js";

const session = await requireSession(["supervisor", "agent"]);
const isSupervisor = session.claims.role === "supervisor";
document.body.dataset.role = session.claims.role; // the nav shows each role its own pages (coaching.css)
const callId = decodeURIComponent(location.pathname.split("/")[2] || "");
const path = `/v1/calls/${encodeURIComponent(callId)}`;
const audio = byId("audio");

let call = null;
let events = [];
let transcript = [];
let cursor = 0; // call time under review: the audio's position, or the last place clicked without audio
let coachingNotes = null; // the call's notes with their moments (GET /v1/notes); null: only call.notes
let pendingSeek = momentFromUrl(); // `?t=SECONDS` or `#t=SECONDS`: open the call at that moment

function momentFromUrl() {
  const raw = new URLSearchParams(location.search).get("t") ?? new URLSearchParams(location.hash.slice(1)).get("t");
  const t = raw === null || raw.trim() === "" ? NaN : Number(raw);
  return Number.isFinite(t) && t >= 0 ? t : null;
}

async function loadCoachingNotes() {
  try {
    coachingNotes = (await api(`/v1/notes?call_id=${encodeURIComponent(callId)}&limit=200`)).notes.reverse();
  } catch {
    coachingNotes = null;
  }
}

async function load() {
  try {
    [call, { events }, { utterances: transcript }] = await Promise.all([
      api(path), api(`${path}/events`), api(`${path}/transcript`),
    ]);
  } catch (error) {
    showBanner(explainRefusal(error), "error");
    byId("main").hidden = true;
    return false;
  }
  await loadCoachingNotes();
  renderAll();
  return true;
}

function duration() {
  const last = events.length ? events[events.length - 1].t || 0 : 0;
  return Math.max(call?.duration || 0, last, Number.isFinite(audio.duration) ? audio.duration : 0, 1);
}

function renderAll() {
  renderHead();
  renderReview();
  renderSummary();
  renderAlerts();
  renderTranscript();
  renderNotes();
  drawPlots();
  renderTimeline();
}

function renderHead() {
  document.title = `Call ${call.id} · callwatch`;
  const status = call.status === "live" ? "Live" : call.status === "ended" ? "Ended" : call.status;
  byId("call-title").replaceChildren(`Call ${call.id}`,
    h("span", { class: "status-pill", dataset: { kind: call.status === "live" ? "live" : "" } }, status),
    call.flagged ? h("span", { class: "status-pill", dataset: { kind: "flagged" } }, "⚑ Flagged") : "");
  byId("call-meta").textContent = [`Agent ${call.agent_id}`, wallDateTime(call.started), clock(call.duration),
    `escalation score ${call.escalation_score}`, call.language && call.language !== "auto" ? call.language : ""]
    .filter(Boolean).join(" · ");
}

// The review state of an ended call (GET /v1/calls/{id} has it from the row derived when the call ended):
// a supervisor changes it here as on the queue; an agent sees it.
function renderReview() {
  const box = byId("review-box");
  box.hidden = !call.review;
  if (!call.review) return;
  const select = byId("review-state");
  select.value = call.review;
  select.disabled = !isSupervisor;
  box.dataset.review = call.review;
  byId("review-by").textContent = call.review_updated ?
    [call.reviewed_by ? `by ${call.reviewed_by}` : "", wallDateTime(call.review_updated)].filter(Boolean).join(" · ") : "";
}

byId("review-state").addEventListener("change", async (event) => {
  const select = event.currentTarget;
  const status = byId("review-status");
  select.disabled = true;
  try {
    const out = await api(`${path}/review`, {
      method: "PUT", body: { state: select.value, author: localStorage.getItem("callwatch.author") || undefined },
    });
    call = { ...call, review: out.review, review_updated: out.review_updated, reviewed_by: out.reviewed_by };
    status.textContent = `${REVIEW_LABELS[out.review]}.`;
  } catch (error) {
    status.textContent = explainRefusal(error);
  }
  renderReview();
});

function renderSummary() {
  const s = summarize(events, call);
  const talkTotal = s.talk.agent + s.talk.customer;
  const rows = [
    ["Talk ratio", talkTotal ? `Agent ${percent(s.talk.agent, talkTotal)}% · customer ${percent(s.talk.customer, talkTotal)}%` : "—",
      talkTotal ? `${clock(s.talk.agent)} and ${clock(s.talk.customer)} of speech` : ""],
    ["Interruptions", `${s.interruptionsByAgent} by the agent`, `${s.interruptionsByCustomer} by the customer`],
    ["Escalation", s.firstEscalation === null ? "None" : `from ${clock(s.firstEscalation)}`,
      s.customerRaisedSeconds ? `customer's voice raised for ${clock(s.customerRaisedSeconds)}` : ""],
    ["Empathy phrases", String(s.empathy.length), [...new Set(s.empathy.map((e) => e.text.toLowerCase()))].slice(0, 4).map((t) => `“${t}”`).join(", ")],
    ["Agent's voice raised", s.agentRaisedEpisodes ? `${s.agentRaisedEpisodes} times` : "Never", ""],
    ["Dead air", s.deadAir ? `${s.deadAir} times` : "None", s.deadAir ? `${Math.round(s.deadAirSeconds)} s in all` : ""],
    ["Alerts", String(s.alerts.length), (call.flags || []).map(ruleTitle).join(", ")],
  ];
  byId("summary").replaceChildren(...rows.flatMap(([term, value, sub]) => [
    h("dt", {}, term), h("dd", {}, value, sub ? h("span", { class: "sub" }, sub) : ""),
  ]));
}

function liveAlerts() {
  const withdrawn = new Set(events.filter((e) => e.type === "alert_retracted").map((e) => e.id));
  return events.filter((e) => e.type === "alert" && !withdrawn.has(e.id));
}

function renderAlerts() {
  const alerts = liveAlerts();
  byId("review-alerts").replaceChildren(...(alerts.length ? alerts.map((a) => h("li", {},
    h("button", { type: "button", dataset: { severity: a.severity }, "data-testid": "alert", "data-rule": a.rule,
      onclick: () => seek(a.cause?.[0]?.start ?? a.t) },
    h("span", { class: "num hint" }, clock(a.t)), a.message))) : [h("li", { class: "hint" }, "No alerts on this call.")]));
}

function renderTimeline() {
  const timeline = byId("timeline");
  timeline.querySelectorAll(".marker").forEach((m) => m.remove());
  const total = duration();
  for (const a of liveAlerts()) {
    timeline.append(h("button", {
      class: "marker", type: "button", dataset: { severity: a.severity }, style: { left: `${(100 * a.t) / total}%` },
      title: `${clock(a.t)} ${a.message}`, "aria-label": `Go to ${clock(a.t)}: ${a.message}`,
      onclick: () => seek(a.cause?.[0]?.start ?? a.t),
    }));
  }
}

function renderTranscript() {
  const list = byId("review-transcript");
  const note = byId("transcript-note");
  list.replaceChildren(...transcript.map((u, i) => h("li", {},
    h("button", { class: "line", type: "button", dataset: { index: i }, onclick: () => seek(u.start) },
      h("span", { class: "line-time num" }, clock(u.start)),
      h("span", { class: `line-who leg-${u.leg}` }, legName(u.leg)),
      h("span", {}, u.text)))));
  note.hidden = transcript.length > 0;
  note.textContent = "No transcript for this call (speech recognition was off, or nothing was said).";
  highlight();
}

function noteAcknowledgement(n) {
  if (n.acknowledged_at) return h("span", { class: "hint", "data-testid": "acknowledged" }, `✓ acknowledged ${wallDateTime(n.acknowledged_at)}`);
  if (isSupervisor || n.acknowledged_at === undefined) return "";
  return h("button", { type: "button", "data-testid": "acknowledge", onclick: async (event) => {
    event.currentTarget.disabled = true;
    try {
      await api(`/v1/notes/${n.id}/acknowledge`, { method: "POST" });
      await loadCoachingNotes();
      renderNotes();
    } catch (error) {
      showBanner(explainRefusal(error), "error");
    }
  } }, "Acknowledge");
}

function renderNotes() {
  const notes = coachingNotes || call.notes || [];
  byId("notes").replaceChildren(...(notes.length ? notes.map((n) => h("li", { class: "note", "data-testid": "note" },
    h("span", { class: "hint" }, `${n.author} · ${wallDateTime(n.created)}`,
      n.t === null || n.t === undefined ? "" : h("button", { class: "quiet", type: "button", "data-testid": "note-moment",
        onclick: () => seek(n.t) }, `at ${clock(n.t)}`)),
    h("p", {}, n.text), noteAcknowledgement(n))) :
    [h("li", { class: "hint" }, "No notes yet.")]));
  if (!isSupervisor) {
    byId("note-form").replaceChildren(h("p", { class: "hint" }, "Supervisors write notes on calls."));
  }
}

function series(type, field, baseField) {
  return ["customer", "agent"].map((leg) => {
    const rows = events.filter((e) => e.type === type && e.leg === leg);
    return {
      leg,
      points: rows.map((e) => [(e.start + e.end) / 2, e[field]]).filter((p) => p[1] !== null),
      baseline: rows.filter((e) => e[baseField] !== null && e[baseField] !== undefined)
        .map((e) => [(e.start + e.end) / 2, e[baseField]]),
    };
  });
}

function drawPlots() {
  const total = duration();
  const episodes = raisedEpisodes(events, total);
  const marks = liveAlerts().map((a) => ({ t: a.t, severity: a.severity }));
  const loud = drawPlot(byId("plot-loudness"), {
    series: series("prosody", "loudness_db", "baseline_loudness_db"), episodes, marks, duration: total,
  });
  drawPlot(byId("plot-pitch"), {
    series: series("prosody", "pitch_hz", "baseline_pitch_hz"), episodes, marks, duration: total, floor: 0,
  });
  byId("plots-note").textContent = loud ? "Click a plot to hear that moment. Shaded: a raised-voice episode." :
    "No voice measurements stored for this call.";
  movePlayheads();
}

// -- playback ----------------------------------------------------------------------------------------

function seek(t) {
  cursor = Math.max(0, t);
  if (audio.src && Number.isFinite(audio.duration)) {
    audio.currentTime = cursor;
    audio.play().catch(() => {});
  }
  highlight();
  movePlayheads();
}

function movePlayheads() {
  const total = duration();
  for (const id of ["note-moment", "incident-moment"]) {
    const moment = byId(id);
    if (moment) moment.textContent = clock(cursor);
  }
  byId("timeline-playhead").style.left = `${(100 * cursor) / total}%`;
  for (const canvas of document.querySelectorAll("canvas[data-testid=plot]")) {
    canvas.nextElementSibling.style.left = `${100 * plotFraction(canvas, cursor, total)}%`;
  }
}

function highlight() {
  const lines = byId("review-transcript").querySelectorAll(".line");
  let current = null;
  transcript.forEach((u, i) => {
    if (cursor >= u.start - 0.05 && cursor <= u.end + 0.25) current = i;
  });
  lines.forEach((line, i) => {
    const on = i === current;
    if (on && line.getAttribute("aria-current") !== "true" && !audio.paused) {
      line.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
    if (on) line.setAttribute("aria-current", "true");
    else line.removeAttribute("aria-current");
  });
}

audio.addEventListener("timeupdate", () => {
  if (pendingSeek !== null) return; // the recording is still loading: keep the moment the link asked for
  cursor = audio.currentTime;
  highlight();
  movePlayheads();
});
audio.addEventListener("loadedmetadata", () => {
  if (pendingSeek !== null) {
    audio.currentTime = Math.min(pendingSeek, audio.duration || pendingSeek);
    pendingSeek = null;
  }
  renderTimeline();
  drawPlots();
});
for (const canvas of document.querySelectorAll("canvas[data-testid=plot]")) {
  canvas.addEventListener("click", (event) => seek(plotTimeAt(canvas, event.clientX, duration())));
}
// The plots take their colours from the theme: redraw when the system switches between light and dark.
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => drawPlots());
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(drawPlots, 150);
});

async function loadRecording() {
  const note = byId("recording-note");
  if (!isSupervisor) {
    note.textContent = "Recordings are available to supervisors.";
    return;
  }
  if (call.status === "live" || call.status === "closing") {
    note.textContent = "The recording is available when the call ends.";
    return;
  }
  try {
    const blob = await api(`${path}/recording`, { as: "blob" });
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(blob);
    note.textContent = "";
  } catch (error) {
    note.textContent = error instanceof HttpError && error.status === 404 ?
      "No recording was kept for this call (see the recording policy)." : explainRefusal(error);
  }
}

// -- notes and export --------------------------------------------------------------------------------

const authorInput = byId("note-author");
authorInput.value = localStorage.getItem("callwatch.author") || "";
byId("note-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = byId("note-text").value.trim();
  const status = byId("note-status");
  if (!text) return;
  const author = authorInput.value.trim() || "supervisor";
  localStorage.setItem("callwatch.author", authorInput.value.trim());
  status.textContent = "Saving…";
  const t = byId("note-at-moment").checked ? Math.round(cursor * 10) / 10 : null;
  try {
    await api("/v1/notes", { method: "POST", body: { call_id: callId, t, text, author } });
    call = { ...call, notes: (await api(path)).notes };
    await loadCoachingNotes();
    renderNotes();
    byId("note-text").value = "";
    status.textContent = "Saved.";
  } catch (error) {
    status.textContent = explainRefusal(error);
  }
});

// -- incidents (supervisors): filed from here, at a moment of the call ------------------------------------------

async function renderIncidents() {
  let incidents = [];
  try {
    incidents = (await api(`/v1/incidents?call_id=${encodeURIComponent(callId)}&limit=200`)).incidents;
  } catch (error) {
    byId("incident-status").textContent = explainRefusal(error);
  }
  byId("call-incidents").replaceChildren(...(incidents.length ? incidents.map((i) => h("li", { class: "note", "data-testid": "incident" },
    h("span", { class: "hint" }, `${i.category} · ${i.severity} · ${i.author} · ${wallDateTime(i.created)}`,
      i.t === null ? "" : h("button", { class: "quiet", type: "button", onclick: () => seek(i.t) }, `at ${clock(i.t)}`)),
    h("p", {}, i.what_happened))) : [h("li", { class: "hint" }, "No incidents filed.")]));
}

byId("incident-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const status = byId("incident-status");
  const body = Object.fromEntries(["category", "severity", "what_happened", "outcome", "follow_up"]
    .map((name) => [name, form.elements[name].value.trim()]));
  body.t = byId("incident-at-moment").checked ? Math.round(cursor * 10) / 10 : null;
  body.author = authorInput.value.trim() || "supervisor";
  status.textContent = "Filing…";
  try {
    await api(`${path}/incidents`, { method: "POST", body });
    form.reset();
    status.textContent = "Filed.";
    await renderIncidents();
  } catch (error) {
    status.textContent = explainRefusal(error);
  }
});

for (const button of document.querySelectorAll("[data-export]")) {
  button.addEventListener("click", () => exportCall(button.dataset.export, callId, events, transcript));
}

// -- a call still in progress ------------------------------------------------------------------------

function followLive() {
  let redraw = null;
  const stream = openStream(`/v1/ws/supervisor?call_id=${encodeURIComponent(callId)}`, {
    onMessage(ev) {
      if (ev.call_id !== callId) return;
      if (ev.call) call = { ...ev.call, notes: call.notes, review: call.review };
      if (ev.type === "call_started") return;
      if (ev.type === "call_ended") {
        stream.close();
        setTimeout(async () => { if (await load()) await loadRecording(); }, 500);
        return;
      }
      events.push(ev);
      if (ev.type === "utterance") transcript.push({ leg: ev.leg, start: ev.start, end: ev.end, text: ev.text, language: ev.language });
      if (ev.type === "utterance_redacted") {
        // Replaces the words already shown of a number that turned out sensitive, in the transcript and events.
        for (const row of transcript) if (row.leg === ev.leg && row.start === ev.start) row.text = ev.text;
        for (const e of events) {
          if (e.type === "utterance" && e.leg === ev.leg && e.start === ev.start) Object.assign(e, { text: ev.text, words: ev.words });
        }
        renderTranscript();
      }
      if (!redraw) redraw = setTimeout(() => { redraw = null; renderAll(); }, 1500);
    },
  });
}

if (await load()) {
  if (pendingSeek !== null) {
    cursor = pendingSeek;
    highlight();
    movePlayheads();
    byId("review-transcript").querySelector(".line[aria-current=true]")?.scrollIntoView({ block: "center" });
  }
  if (isSupervisor) {
    byId("incidents-panel").hidden = false;
    renderIncidents();
  }
  await loadRecording();
  if (!audio.src) pendingSeek = null;
  if (isSupervisor && (call.status === "live" || call.status === "closing")) followLive();
}
