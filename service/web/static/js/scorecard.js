// Scorecards: an agent's behaviour per day or week, plotted against their team's median (plain SVG), each point one
// click from the calls behind it. An agent sees their own; a supervisor picks an agent or a whole team.

import { byId, clear, h } from "./dom.js";
import { api, explainRefusal, requireSession, showBanner } from "./session.js";
import {
  applyRole, callFacts, callHref, dayStart, fillForm, fillPickers, formValues, isoDay, loadTeams, pageParams,
  rememberInUrl, svg, withQuery,
} from "./coaching.js";

const session = await requireSession(["supervisor", "agent"]);
const isSupervisor = session.claims.role === "supervisor";
applyRole(session.claims);

const fixed = (digits) => (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));
const share = (v) => (v === null || v === undefined ? "—" : `${Math.round(100 * v)}%`);

/** Behaviour only: the API's METRICS, never an emotion of the agent. */
const METRICS = [
  ["interruptions_per_10min", "Interruptions per 10 min of talk", fixed(1)],
  ["talk_listen_ratio", "Talk / listen ratio", fixed(2)],
  ["dead_air_per_call", "Dead air per call", fixed(1)],
  ["dead_air_s_per_call", "Dead-air seconds per call", fixed(0)],
  ["monologues_per_call", "Monologues per call", fixed(1)],
  ["fast_speech_per_call", "Fast speech per call", fixed(1)],
  ["voice_rising_per_call", "Own voice rising per call", fixed(1)],
  ["escalations", "Customer escalations", fixed(0)],
  ["answered_share", "Escalations answered with empathy", share],
  ["raised_after_share", "Own voice rose after an escalation", share],
  ["alerts_per_call", "Alerts per call", fixed(1)],
  ["flagged_share", "Calls flagged", share],
];

const form = byId("card-form");
const params = pageParams();
if (!isSupervisor) {
  for (const field of form.querySelectorAll("[data-for=supervisor] input, [data-for=supervisor] select")) field.disabled = true;
}
let view = null; // {period, series: [{agent, points}], median: [{start, label, metrics}]}

function periodEnd(start) {
  return start + (view.period === "day" ? 1 : 7) * 86400;
}

// -- the calls behind a point ---------------------------------------------------------------------------------

async function showCalls(agent, point, circle) {
  for (const other of document.querySelectorAll("[data-testid=point][aria-pressed=true]")) other.setAttribute("aria-pressed", "false");
  circle?.setAttribute("aria-pressed", "true");
  const panel = byId("point-calls");
  const list = h("ul", {}, point.call_ids.map((id) => h("li", { dataset: { callId: id } },
    h("a", { href: callHref(id), "data-testid": "point-call" }, `Call ${id}`))));
  clear(panel).append(
    h("div", { class: "panel-head" },
      h("h2", { id: "point-calls-title", tabindex: "-1" },
        `${point.calls} call${point.calls === 1 ? "" : "s"} of ${agent}, ${view.period === "day" ? "" : "week of "}${point.label}`),
      h("a", { href: withQuery("/search", { agent_id: isSupervisor ? agent : "", from: isoDay(point.start),
        to: isoDay(periodEnd(point.start) - 1) }) }, "Open in search")),
    list);
  panel.hidden = false;
  panel.querySelector("h2").focus({ preventScroll: true });
  panel.scrollIntoView({ block: "nearest" });
  // The same calls with their facts (one search over the period); the ids are shown whatever it answers.
  try {
    const { hits } = await api(withQuery("/v1/search", { agent_id: agent, from: point.start, to: periodEnd(point.start),
      limit: 200 }));
    const byCall = new Map(hits.map((hit) => [hit.call.id, hit.call]));
    for (const item of list.children) {
      const call = byCall.get(item.dataset.callId);
      if (call) item.append(" ", callFacts(call));
    }
  } catch { /* the links alone still open the calls */ }
}

// -- one chart per metric -------------------------------------------------------------------------------------

/** The round number at or above `max` the axis ends at (1, 2, 2.5, 5 times a power of ten). */
function niceCeil(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((v) => v >= max * 1.02) || 10 * power;
}

const W = 480;
const H = 190;
const PAD = { left: 44, right: 12, top: 12, bottom: 28 };

function chart([key, title, format], starts, labels) {
  const values = [
    ...view.series.flatMap((s) => s.points.map((p) => p.metrics[key])),
    ...view.median.map((m) => m.metrics?.[key]),
  ].filter((v) => Number.isFinite(v));
  const isShare = key.endsWith("_share");
  const top = isShare ? 1 : niceCeil(Math.max(...values, 0));
  const tick = isShare ? share : (v) => String(Number(v.toFixed(2)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (start) => PAD.left + ((starts.indexOf(start) + 0.5) * plotW) / starts.length;
  const y = (v) => PAD.top + plotH * (1 - v / top);

  const axis = [
    svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }),
    svg("text", { class: "tick", x: PAD.left - 6, y: y(0) + 3, "text-anchor": "end", text: tick(0) }),
    ...[top / 2, top].map((v) => [
      svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), "stroke-dasharray": "2 4" }),
      svg("text", { class: "tick", x: PAD.left - 6, y: y(v) + 3, "text-anchor": "end", text: tick(v) }),
    ]).flat(),
  ];
  const every = Math.ceil(starts.length / 7);
  const ticks = starts.map((s, i) => (i % every ? null :
    svg("text", { class: "tick", x: x(s), y: H - 8, "text-anchor": "middle", text: labels.get(s).slice(5) })));

  const path = (pts) => {
    let d = "";
    let pen = false;
    for (const [s, v] of pts) {
      if (!Number.isFinite(v)) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(s).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    return d;
  };
  const median = view.median.filter((m) => m.metrics).map((m) => [m.start, m.metrics[key]]);
  const medianMarks = [
    svg("path", { class: "median-line", d: path(median) }),
    ...median.filter(([, v]) => Number.isFinite(v)).map(([s, v]) =>
      svg("rect", { class: "median-dot", x: x(s) - 2.5, y: y(v) - 2.5, width: 5, height: 5 },
        svg("title", { text: `${labels.get(s)}: team median ${format(v)}` }))),
  ];
  const series = view.series.map((s, i) => svg("g", { class: `swatch-${i % 6}` },
    svg("path", { class: "series", stroke: "currentColor", d: path(s.points.map((p) => [p.start, p.metrics[key]])) }),
    ...s.points.filter((p) => Number.isFinite(p.metrics[key])).map((p) => {
      const med = view.median.find((m) => m.start === p.start)?.metrics?.[key];
      const words = `${s.agent}, ${p.label}: ${format(p.metrics[key])}` +
        (Number.isFinite(med) ? `, team median ${format(med)}` : "") + `; ${p.calls} call${p.calls === 1 ? "" : "s"}`;
      const circle = svg("circle", {
        class: "point", cx: x(p.start), cy: y(p.metrics[key]), r: 5, fill: "currentColor", tabindex: 0, role: "button",
        "aria-pressed": "false", "aria-label": words, "data-testid": "point", "data-metric": key, "data-agent": s.agent,
        "data-start": p.start,
      }, svg("title", { text: words }));
      circle.addEventListener("click", () => showCalls(s.agent, p, circle));
      circle.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          showCalls(s.agent, p, circle);
        }
      });
      return circle;
    })));
  return h("figure", { class: "chart", "data-testid": "metric-chart", "data-metric": key },
    h("figcaption", {}, title, values.length ? "" : h("span", { class: "hint" }, " · nothing to measure in this range")),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "group", "aria-label": `${title} per ${view.period}` },
      ...axis, ...ticks, ...medianMarks, ...series));
}

function renderCharts() {
  const labels = new Map();
  for (const p of [...view.series.flatMap((s) => s.points), ...view.median]) labels.set(p.start, p.label);
  const starts = [...labels.keys()].sort((a, b) => a - b);
  const empty = byId("card-empty");
  byId("charts-panel").hidden = !starts.length;
  empty.hidden = starts.length > 0;
  empty.textContent = "No ended calls in this range.";
  byId("legend").replaceChildren(
    ...view.series.map((s, i) => h("span", { class: `swatch-${i % 6}` }, s.agent)),
    view.median.length ? h("span", { class: "median-key" }, "team median") : "");
  byId("charts").replaceChildren(...(starts.length ? METRICS.map((m) => chart(m, starts, labels)) : []));
}

function renderAgentTotals(card) {
  const tiles = METRICS.map(([key, title, format]) => h("div", {},
    h("dt", {}, title), h("dd", { class: "num" }, format(card.total.metrics?.[key]))));
  byId("tiles").replaceChildren(h("div", {}, h("dt", {}, "Calls"), h("dd", { class: "num" }, String(card.total.calls))),
    ...tiles);
  byId("team-agents").hidden = true;
  byId("totals-panel").hidden = false;
}

function renderTeamAgents(card) {
  byId("tiles").replaceChildren();
  const table = byId("team-agents");
  table.tBodies[0].replaceChildren(...card.agents.map((a) => h("tr", {},
    h("td", {}, h("a", { href: withQuery("/scorecard", { agent: a.agent_id, period: card.period }) }, a.agent_id)),
    h("td", { class: "num" }, String(a.points.reduce((n, p) => n + p.calls, 0))),
    h("td", { class: "num" }, String(a.points.length)))));
  table.hidden = false;
  byId("totals-panel").hidden = false;
}

async function show() {
  const values = formValues(form);
  rememberInUrl(values);
  if (!isSupervisor) values.agent = session.claims.agent_id;
  byId("point-calls").hidden = true;
  const range = { period: values.period || "week", from: values.from ? dayStart(values.from) : "",
    to: values.to ? dayStart(values.to, true) : "" };
  const empty = byId("card-empty");
  if (!values.agent && !values.team) {
    for (const id of ["totals-panel", "charts-panel"]) byId(id).hidden = true;
    empty.hidden = false;
    empty.textContent = "Pick an agent or a team.";
    return;
  }
  try {
    if (values.agent) {
      const card = await api(withQuery(`/v1/agents/${encodeURIComponent(values.agent)}/scorecard`, range));
      view = { period: card.period, series: [{ agent: card.agent_id, points: card.points }],
        median: card.team ? card.points.map((p) => ({ start: p.start, label: p.label, metrics: p.team_median })) : [] };
      byId("card-title").textContent = `Scorecard of ${card.agent_id}` + (card.team ? ` (team ${card.team})` : "");
      renderAgentTotals(card);
    } else {
      const card = await api(withQuery(`/v1/teams/${encodeURIComponent(values.team)}/scorecard`, range));
      view = { period: card.period, series: card.agents.map((a) => ({ agent: a.agent_id, points: a.points })),
        median: card.median };
      byId("card-title").textContent = `Team ${card.team}`;
      renderTeamAgents(card);
    }
    showBanner("");
    renderCharts();
  } catch (error) {
    showBanner(explainRefusal(error), "error");
    for (const id of ["totals-panel", "charts-panel"]) byId(id).hidden = true;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  show();
});
byId("c-agent").addEventListener("input", () => { if (byId("c-agent").value) byId("c-team").value = ""; });
byId("c-team").addEventListener("change", () => { if (byId("c-team").value) byId("c-agent").value = ""; });
// The plots take their colours from the theme; SVG follows it by itself (currentColor), nothing to redraw.

if (isSupervisor) fillPickers(await loadTeams(), byId("c-team"), byId("agents"), "—");
fillForm(form, params);
if (isSupervisor && !params.agent && !params.team && byId("c-team").options.length > 1) byId("c-team").selectedIndex = 1;
await show();
