// callwatch pages: plain DOM, no build step. The token comes from ?token= (browsers cannot set websocket headers).
"use strict";
const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
const $ = (id) => document.getElementById(id);
const api = (path, opts = {}) => fetch(path, {...opts, headers: {...(opts.headers || {}), Authorization: "Bearer " + token}})
  .then((r) => r.ok ? r.json() : r.json().then((e) => Promise.reject(new Error(e.error || r.status))));

function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k === "text" ? (n.textContent = v) : n.setAttribute(k, v);
  n.append(...children);
  return n;
}

function alertItem(a) {
  return el("li", {"data-testid": "alert", "data-rule": a.rule, "data-severity": a.severity, "data-alert-id": a.id},
    el("b", {text: a.message}), " ", el("span", {class: "tip", text: a.tip}), " ",
    el("small", {text: `${a.call_id || ""} @ ${Number(a.t).toFixed(1)} s`}));
}

function subscribe(path, onEvent) {
  const connect = () => {
    const ws = new WebSocket(`${wsBase}${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`);
    ws.onopen = () => ($("status").textContent = "live");
    ws.onmessage = (m) => onEvent(JSON.parse(m.data));
    // A screen that fell behind is cut off by the server: reconnect to fresh state.
    ws.onclose = () => { $("status").textContent = "reconnecting…"; setTimeout(connect, 2000); };
  };
  connect();
}

function agentPage() {
  subscribe("/v1/ws/agent", (ev) => {
    if (ev.type === "alert") $("alerts").prepend(alertItem(ev));
    else if (ev.type === "alert_retracted") document.querySelector(`[data-alert-id="${ev.id}"]`)?.remove();
    else if (ev.type === "utterance") $("transcript").append(el("li", {text: `${ev.leg}: ${ev.text}`}));
    else if (ev.type.startsWith("call_")) $("call").textContent =
      `${ev.call.id}: ${ev.call.status}, ${Math.round(ev.call.duration)} s`;
  });
}

function supervisorPage() {
  const rows = new Map();
  const show = (call) => {
    let tr = rows.get(call.id);
    if (!tr) {
      const listen = el("button", {"data-testid": "listen", text: "Listen"});
      listen.onclick = () => listenTo(call.id, listen);
      tr = el("tr", {"data-testid": "call-row", "data-call-id": call.id}, el("td"), el("td"), el("td"), el("td"),
              el("td"), el("td", {}, listen));
      rows.set(call.id, tr);
      $("calls").prepend(tr);
    }
    tr.setAttribute("data-flagged", String(call.flagged));
    const cells = tr.children;
    cells[0].replaceChildren(el("a", {href: `/calls/${encodeURIComponent(call.id)}?token=${token}`, text: call.id}));
    cells[1].textContent = call.agent_id; cells[2].textContent = call.status;
    cells[3].textContent = call.escalation_score; cells[4].textContent = call.flags.join(", ");
  };
  api("/v1/calls?limit=50").then((r) => r.calls.reverse().forEach(show)).catch(() => {});
  subscribe("/v1/ws/supervisor", (ev) => {
    if (ev.call) show(ev.call);
    if (ev.type === "alert") $("alerts").prepend(alertItem(ev));
    if (ev.type === "alert_retracted") document.querySelector(`[data-alert-id="${ev.id}"]`)?.remove();
  });
}

function listenTo(callId, button) {
  // 16-bit stereo PCM at 8 kHz, played as it arrives, a little ahead of the clock.
  const ctx = new AudioContext();
  let at = 0;
  const ws = new WebSocket(`${wsBase}/v1/ws/listen/${encodeURIComponent(callId)}?token=${encodeURIComponent(token)}`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (m) => {
    if (typeof m.data === "string") return;
    const pcm = new Int16Array(m.data), n = pcm.length / 2;
    const buf = ctx.createBuffer(2, n, 8000);
    for (let c = 0; c < 2; c++) { const ch = buf.getChannelData(c); for (let i = 0; i < n; i++) ch[i] = pcm[2 * i + c] / 32768; }
    const src = ctx.createBufferSource();
    src.buffer = buf; src.connect(ctx.destination);
    at = Math.max(at, ctx.currentTime + 0.1); src.start(at); at += buf.duration;
  };
  button.textContent = "Stop";
  button.onclick = () => { ws.close(); ctx.close(); button.textContent = "Listen"; button.onclick = () => listenTo(callId, button); };
}

function callPage() {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  $("call-id").textContent = id;
  api(`/v1/calls/${encodeURIComponent(id)}`).then((c) => {
    $("call").textContent = `${c.agent_id}, ${c.status}, ${Math.round(c.duration)} s, escalation ${c.escalation_score}` +
      (c.flagged ? " (flagged)" : "");
    c.notes.forEach((n) => $("notes").append(el("li", {text: `${n.author}: ${n.text}`})));
    if (c.recording) {
      fetch(`/v1/calls/${encodeURIComponent(id)}/recording`, {headers: {Authorization: "Bearer " + token}})
        .then((r) => r.ok ? r.blob() : null).then((b) => { if (b) { $("recording").src = URL.createObjectURL(b); $("recording").hidden = false; } });
    }
  }).catch((e) => ($("status").textContent = e.message));
  api(`/v1/calls/${encodeURIComponent(id)}/events?type=alert`).then((r) => r.events.forEach((a) => $("alerts").append(alertItem(a))));
  api(`/v1/calls/${encodeURIComponent(id)}/transcript`).then((r) =>
    r.utterances.forEach((u) => $("transcript").append(el("li", {text: `[${u.start.toFixed(1)}] ${u.leg}: ${u.text}`}))));
  $("note-form").onsubmit = (e) => {
    e.preventDefault();
    const text = e.target.text.value;
    api(`/v1/calls/${encodeURIComponent(id)}/notes`, {method: "POST", body: JSON.stringify({text}),
      headers: {"Content-Type": "application/json"}})
      .then((n) => { $("notes").append(el("li", {text: `${n.author}: ${n.text}`})); e.target.reset(); })
      .catch((err) => ($("status").textContent = err.message));
  };
}

({agent: agentPage, supervisor: supervisorPage, call: callPage})[document.body.dataset.page]();
