// Call search: full text over the redacted transcripts with the API's filters, sorting and paging. Each hit shows
// its matching line, which opens the review page at that moment.

import { byId, h } from "./dom.js";
import { clock, legName, RULE_TITLES } from "./format.js";
import { api, explainRefusal, requireSession, showBanner } from "./session.js";
import {
  applyRole, callFacts, callHref, dayStart, fillForm, fillPickers, formValues, loadTeams, pageParams, rememberInUrl,
} from "./coaching.js";

const PAGE = 20;
const session = await requireSession(["supervisor", "agent"]);
const isSupervisor = session.claims.role === "supervisor";
applyRole(session.claims);

const form = byId("search-form");
byId("f-rule").append(...Object.entries(RULE_TITLES).map(([rule, title]) => h("option", { value: rule }, title)));
if (!isSupervisor) for (const field of form.querySelectorAll("[data-for=supervisor] input, [data-for=supervisor] select")) field.disabled = true;

const initial = pageParams();
fillForm(form, initial);
let offset = Number(initial.offset) || 0;
let nextOffset = null;

/** The API's parameters from what the form says. */
function apiParams(values) {
  const out = { ...values, limit: PAGE, offset };
  delete out.min_minutes;
  delete out.max_minutes;
  if (values.from) out.from = dayStart(values.from);
  if (values.to) out.to = dayStart(values.to, true);
  if (values.min_minutes) out.min_duration = Number(values.min_minutes) * 60;
  if (values.max_minutes) out.max_duration = Number(values.max_minutes) * 60;
  for (const [key, value] of Object.entries(out)) if (value === null || value === "") delete out[key];
  return out;
}

/** The line's words, those that begin like a word searched for marked (the server stems; this only guides the eye). */
function marked(text, q) {
  const stems = (q || "").toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 2)
    .map((w) => w.slice(0, Math.max(3, Math.min(w.length, 5))));
  if (!stems.length) return [text];
  return text.split(/([\p{L}\p{N}']+)/u).map((part) =>
    stems.some((s) => part.toLowerCase().startsWith(s)) ? h("mark", {}, part) : part);
}

function renderHit({ call, match }, q) {
  const open = callHref(call.id, match ? match.t : null);
  return h("li", { class: "hit", "data-testid": "hit", "data-call-id": call.id },
    h("a", { class: "hit-title", href: open }, `Call ${call.id}`),
    callFacts(call),
    match ? h("p", { class: "hit-line" },
      h("span", { class: "num hint" }, clock(match.t)),
      h("span", { class: `line-who leg-${match.leg}` }, legName(match.leg)),
      h("a", { href: open, "data-testid": "hit-line", "aria-label": `Open at ${clock(match.t)}: ${match.text}` },
        marked(match.text, q))) : "");
}

async function run() {
  const values = formValues(form);
  rememberInUrl({ ...values, ...(offset ? { offset } : {}) });
  const status = byId("results-range");
  status.textContent = "Searching…";
  try {
    const { hits, next_offset: nxt } = await api(`/v1/search?${new URLSearchParams(apiParams(values))}`);
    nextOffset = nxt;
    byId("hits").replaceChildren(...hits.map((hit) => renderHit(hit, values.q)));
    byId("hits-empty").hidden = hits.length > 0;
    status.textContent = hits.length ? `${offset + 1}–${offset + hits.length}${nxt === null ? "" : " and more"}` : "";
    byId("prev").disabled = offset === 0;
    byId("next").disabled = nxt === null;
    showBanner("");
  } catch (error) {
    status.textContent = "";
    showBanner(explainRefusal(error), "error");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  offset = 0;
  run();
});
form.addEventListener("reset", () => setTimeout(() => { offset = 0; run(); }));
byId("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); run(); });
byId("next").addEventListener("click", () => { if (nextOffset !== null) { offset = nextOffset; run(); } });

if (isSupervisor) {
  fillPickers(await loadTeams(), byId("f-team"), byId("agents"));
  fillForm(form, initial);
}
await run();
