// The agent's screen: one live call at a time from /v1/ws/agent; an idle state between calls.

import { AlertCards } from "./alerts-view.js";
import { byId, h } from "./dom.js";
import { clock, legName } from "./format.js";
import { TalkRatio, VoiceMeter } from "./meters.js";
import { api, openStream, requireSession } from "./session.js";

const session = await requireSession(["agent"]);

const alerts = new AlertCards({
  list: byId("alerts"), empty: byId("alerts-empty"), more: byId("alerts-more"), dismissAll: byId("dismiss-all"),
});
const customerMeter = new VoiceMeter(byId("meter-customer"), {
  label: "Customer tone", words: { calm: "Calm", rising: "Rising", raised: "Raised", quiet: "Listening" },
});
const agentMeter = new VoiceMeter(byId("meter-agent"), {
  label: "Your volume", words: { calm: "Steady", rising: "Louder", raised: "Loud", quiet: "Quiet" },
});
const ratio = new TalkRatio(byId("ratio"));
const transcript = byId("transcript");

let current = null; // {id, t, at}: the call on screen, its latest audio time and when we heard it
const live = new Map(); // call id -> call object, for the agent's calls still in progress
const ended = new Set(); // ids of the calls that ended while this page was open: their late events stay off

function startCall(call, t) {
  current = { id: call.id, t: t || call.duration || 0, at: performance.now() };
  alerts.clear();
  customerMeter.reset();
  agentMeter.reset();
  ratio.reset();
  transcript.replaceChildren();
  byId("transcript-empty").hidden = false;
  byId("call-id").textContent = `Call ${call.id}`;
  byId("idle").hidden = true;
  byId("on-call").hidden = false;
  renderClock();
}

function endCall(call) {
  live.delete(call.id);
  ended.add(call.id);
  if (!current || current.id !== call.id) return;
  current = null;
  const next = [...live.values()].at(-1);
  if (next) {
    startCall(next, next.duration);
    return;
  }
  const alertCount = call.counts?.alert || 0;
  byId("idle-title").textContent = "Ready for your next call";
  byId("idle-detail").replaceChildren(
    `Your last call lasted ${clock(call.duration)} with ${alertCount} coaching ${alertCount === 1 ? "tip" : "tips"}. `,
    h("a", { href: `/calls/${encodeURIComponent(call.id)}` }, "Review it"),
    ".");
  byId("on-call").hidden = true;
  byId("idle").hidden = false;
}

function addUtterance(ev) {
  byId("transcript-empty").hidden = true;
  const turn = h("li", { class: "turn", dataset: { leg: ev.leg, start: ev.start } },
    h("span", { class: `turn-who leg-${ev.leg}` }, ev.leg === "agent" ? "You" : legName(ev.leg),
      h("span", { class: "hint num" }, clock(ev.start))),
    h("p", { class: "turn-text" }, ev.text));
  // Transcripts finish out of order (a long turn takes longer): keep the conversation in spoken order.
  const later = [...transcript.children].find((node) => Number(node.dataset.start) > ev.start);
  transcript.insertBefore(turn, later || null);
  const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 120;
  if (nearBottom) transcript.scrollTop = transcript.scrollHeight;
}

/** A number read over several utterances turned out to be sensitive: the words already shown are replaced. */
function redactUtterance(ev) {
  for (const node of transcript.querySelectorAll(`.turn[data-leg="${ev.leg}"]`)) {
    if (Number(node.dataset.start) === ev.start) node.querySelector(".turn-text").textContent = ev.text;
  }
}

function handle(ev) {
  if (ev.type === "call_started" || ev.type === "call_updated") {
    live.set(ev.call.id, ev.call);
    if (!current && ev.call.status === "live") startCall(ev.call, ev.t);
    return;
  }
  if (ev.type === "call_ended") {
    endCall(ev.call);
    return;
  }
  if (!current && ev.call_id && !ended.has(ev.call_id)) {
    // Only this agent's calls come here: one whose first event is not its call object (an alert may overtake
    // the call_updated that carries it) is shown at once, and its call object fills in when it arrives.
    const call = live.get(ev.call_id) || { id: ev.call_id, status: "live" };
    live.set(call.id, call);
    startCall(call, ev.t);
  }
  if (!current || ev.call_id !== current.id) return;
  if (typeof ev.t === "number" && ev.t >= current.t) {
    current.t = ev.t;
    current.at = performance.now();
  }
  if (ev.type === "alert") alerts.add(ev);
  else if (ev.type === "alert_retracted") alerts.retract(ev.id);
  else if (ev.type === "utterance") addUtterance(ev);
  else if (ev.type === "utterance_redacted") redactUtterance(ev);
  else if (ev.type === "prosody") {
    (ev.leg === "agent" ? agentMeter : customerMeter).update(ev);
    ratio.add(ev.leg, ev.end - ev.start);
  }
}

function renderClock() {
  if (!current) return;
  byId("call-clock").textContent = clock(current.t + (performance.now() - current.at) / 1000);
}

setInterval(() => {
  const now = performance.now();
  renderClock();
  customerMeter.tick(now);
  agentMeter.tick(now);
  if (current) ratio.render();
}, 1000);

/** After a reconnect (the server cuts off a screen that fell behind): end a call that finished meanwhile. */
async function resync() {
  if (!current) return;
  try {
    const { calls } = await api("/v1/calls?live=true");
    if (current && !calls.some((call) => call.id === current.id)) {
      endCall(await api(`/v1/calls/${encodeURIComponent(current.id)}`));
    }
  } catch { /* the stream's own probe reports refusals */ }
}

const conn = byId("conn");
const STATE_WORDS = { open: "Connected", connecting: "Connecting…", closed: "Reconnecting…" };
openStream("/v1/ws/agent", {
  onMessage: handle,
  onState: (state) => {
    conn.dataset.state = state;
    conn.textContent = STATE_WORDS[state];
  },
  onOpen: resync,
  probe: () => api(`/v1/calls?live=true&limit=1`),
});
document.title = `Agent ${session.claims.agent_id} · callwatch`;
