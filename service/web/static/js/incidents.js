// Incident records: the list with filters, its CSV export (the server's, every match), and a printable view.

import { byId, h } from "./dom.js";
import { clock, wallDateTime } from "./format.js";
import { api, explainRefusal, requireSession, showBanner } from "./session.js";
import {
  applyRole, callHref, dayStart, downloadFrom, fillForm, fillPickers, formValues, isoDay, loadTeams, pageParams,
  rememberInUrl, withQuery,
} from "./coaching.js";

const PAGE = 100;
const session = await requireSession(["supervisor"]);
applyRole(session.claims);

const form = byId("incidents-form");
let offset = 0;
let nextOffset = null;

function filters() {
  const values = formValues(form);
  const query = { ...values };
  if (values.from) query.from = dayStart(values.from);
  if (values.to) query.to = dayStart(values.to, true);
  return { values, query };
}

function row(incident) {
  const call = incident.call_id ?
    h("a", { href: callHref(incident.call_id, incident.t) }, incident.call_id,
      incident.t === null || incident.t === undefined ? "" : ` at ${clock(incident.t)}`) :
    h("span", { class: "hint" }, "erased");
  return h("tr", { "data-testid": "incident-row", "data-incident-id": incident.id },
    h("td", {}, wallDateTime(incident.created)),
    h("td", {}, incident.category),
    h("td", {}, h("span", { class: "severity", dataset: { severity: incident.severity } }, incident.severity)),
    h("td", {}, incident.agent_id),
    h("td", {}, call),
    h("td", { class: "text-cell" }, incident.what_happened),
    h("td", { class: "text-cell" }, incident.outcome),
    h("td", { class: "text-cell" }, incident.follow_up),
    h("td", {}, incident.author));
}

async function load() {
  const { values, query } = filters();
  rememberInUrl(values);
  try {
    const out = await api(withQuery("/v1/incidents", { ...query, limit: PAGE, offset }));
    nextOffset = out.next_offset;
    byId("incident-rows").replaceChildren(...out.incidents.map(row));
    byId("incidents-empty").hidden = out.incidents.length > 0;
    byId("prev").disabled = offset === 0;
    byId("next").disabled = nextOffset === null;
    const chosen = Object.entries(values).map(([k, v]) => `${k} ${v}`).join(", ");
    byId("print-head").textContent = `callwatch incident records${chosen ? ` (${chosen})` : ""}, printed ` +
      `${wallDateTime(Date.now() / 1000)}.`;
    showBanner("");
  } catch (error) {
    showBanner(explainRefusal(error), "error");
  }
}

byId("export-csv").addEventListener("click", async () => {
  const status = byId("incidents-status");
  try {
    await downloadFrom(withQuery("/v1/incidents.csv", filters().query), `callwatch-incidents-${isoDay(Date.now() / 1000)}.csv`);
    status.textContent = "Exported.";
  } catch (error) {
    status.textContent = explainRefusal(error);
  }
});
byId("print").addEventListener("click", () => window.print());
form.addEventListener("submit", (event) => {
  event.preventDefault();
  offset = 0;
  load();
});
byId("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
byId("next").addEventListener("click", () => { if (nextOffset !== null) { offset = nextOffset; load(); } });

fillPickers(await loadTeams(), byId("i-team"), byId("agents"));
fillForm(form, pageParams());
await load();
