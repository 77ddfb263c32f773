// Shared by the coaching pages (search, scorecards, queue, notes, incidents): the nav by role, forms kept in the
// address bar, call summaries, downloads and small SVG helpers.

import { h } from "./dom.js";
import { clock, wallDateTime } from "./format.js";
import { api } from "./session.js";

/** Marks the page with the signed-in role: the nav hides the links the role has no use for (coaching.css). */
export function applyRole(claims) {
  document.body.dataset.role = claims.role;
  const brand = document.querySelector(".brand");
  if (brand && claims.role === "agent") brand.setAttribute("href", "/agent");
}

/** The page's query string as a plain object (the token is never in it: session.js takes it out first). */
export function pageParams() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

/** Fills a form's named fields from the address bar. */
export function fillForm(form, params) {
  for (const field of form.elements) {
    if (!field.name || !(field.name in params)) continue;
    if (field.type === "checkbox") field.checked = params[field.name] === "true";
    else field.value = params[field.name];
  }
}

/** The form's non-empty named fields, as written (dates as YYYY-MM-DD, minutes as typed). */
export function formValues(form) {
  const out = {};
  for (const field of form.elements) {
    if (!field.name || field.disabled) continue;
    const value = field.type === "checkbox" ? (field.checked ? "true" : "") : field.value.trim();
    if (value !== "") out[field.name] = value;
  }
  return out;
}

/** Keeps what the user chose in the address bar, so a search or a view can be bookmarked and reloaded. */
export function rememberInUrl(values) {
  const query = new URLSearchParams(values).toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") + location.hash);
}

/** A YYYY-MM-DD date as Unix seconds at 00:00 UTC (the API's days are UTC); `endOfDay` adds the whole day. */
export function dayStart(value, endOfDay = false) {
  const [y, m, d] = String(value).split("-").map(Number);
  if (!y || !m || !d) return null;
  return Date.UTC(y, m - 1, d) / 1000 + (endOfDay ? 86400 : 0);
}

export function isoDay(epochSeconds) {
  return new Date(epochSeconds * 1000).toISOString().slice(0, 10);
}

/** "path?query" with the empty values left out. */
export function withQuery(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""))
    .toString();
  return query ? `${path}?${query}` : path;
}

/** The review page of a call, opened at call time `t` (seconds) when given. */
export function callHref(callId, t) {
  const base = `/calls/${encodeURIComponent(callId)}`;
  return t === null || t === undefined ? base : `${base}?t=${Math.max(0, Math.round(t * 10) / 10)}`;
}

export const REVIEW_LABELS = { new: "New", reviewed: "Reviewed", coached: "Coached" };

/** One line about a call: agent, when, how long, score, and the badges. */
export function callFacts(call) {
  return h("span", { class: "call-facts" },
    h("span", {}, `Agent ${call.agent_id}`),
    call.team ? h("span", {}, `team ${call.team}`) : "",
    h("span", {}, wallDateTime(call.started)),
    h("span", { class: "num" }, clock(call.duration)),
    h("span", { class: "num" }, `score ${call.escalation_score}`),
    call.alerts ? h("span", { class: "num" }, `${call.alerts} alert${call.alerts === 1 ? "" : "s"}`) : "",
    call.flagged ? h("span", { class: "tag", dataset: { kind: "flagged" } }, "⚑ Flagged") : "",
    call.review ? h("span", { class: "tag", dataset: { kind: call.review } }, REVIEW_LABELS[call.review] || call.review) : "",
    call.notes ? h("span", { class: "tag" }, `${call.notes} note${call.notes === 1 ? "" : "s"}`) : "");
}

/** Fetches `path` with the token and saves the answer as `name` (the CSV export). */
export async function downloadFrom(path, name) {
  const blob = await api(path, { as: "blob" });
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Teams and their agents for the pickers (supervisors only); empty when there are none or it is refused. */
export async function loadTeams() {
  try {
    return (await api("/v1/teams")).teams || [];
  } catch {
    return [];
  }
}

/** Fills a <select> of teams and a <datalist> of agents. */
export function fillPickers(teams, teamSelect, agentList, blank = "Any team") {
  if (teamSelect) {
    const chosen = teamSelect.value;
    teamSelect.replaceChildren(h("option", { value: "" }, blank),
      ...teams.map((t) => h("option", { value: t.team }, t.team)));
    teamSelect.value = chosen;
  }
  if (agentList) {
    const agents = [...new Set(teams.flatMap((t) => t.agents))].sort();
    agentList.replaceChildren(...agents.map((a) => h("option", { value: a })));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element; attributes only (presentation attributes, no inline style, as the CSP asks). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}
