// The supervisor's review queue: flagged, ended calls by review state (new → reviewed → coached), changed in place.

import { byId, h } from "./dom.js";
import { clock, wallDateTime } from "./format.js";
import { api, explainRefusal, requireSession, showBanner } from "./session.js";
import {
  applyRole, callHref, dayStart, fillForm, fillPickers, formValues, loadTeams, pageParams, rememberInUrl,
  REVIEW_LABELS, withQuery,
} from "./coaching.js";

const PAGE = 50;
const session = await requireSession(["supervisor"]);
applyRole(session.claims);

const form = byId("queue-form");
const params = pageParams();
let offset = 0;
let nextOffset = null;

function stateSelect(call) {
  const select = h("select", { "data-testid": "review-state", "aria-label": `Review state of call ${call.id}` },
    Object.entries(REVIEW_LABELS).map(([value, label]) => h("option", { value }, label)));
  select.value = call.review || "new";
  select.addEventListener("change", async () => {
    const status = byId("queue-status");
    select.disabled = true;
    try {
      const out = await api(`/v1/calls/${encodeURIComponent(call.id)}/review`, {
        method: "PUT", body: { state: select.value, author: localStorage.getItem("callwatch.author") || undefined },
      });
      status.textContent = `Call ${call.id}: ${REVIEW_LABELS[out.review]}.`;
      await load(); // the row moves to its new tab; the counts follow
    } catch (error) {
      status.textContent = explainRefusal(error);
      select.value = call.review || "new";
      select.disabled = false;
    }
  });
  return select;
}

function row(call) {
  return h("tr", { "data-testid": "queue-row", "data-call-id": call.id, "data-review": call.review },
    h("td", {}, h("a", { href: callHref(call.id) }, call.id)),
    h("td", {}, call.agent_id, call.team ? h("span", { class: "hint" }, ` · ${call.team}`) : ""),
    h("td", {}, wallDateTime(call.started)),
    h("td", { class: "num" }, clock(call.duration)),
    h("td", { class: "num" }, String(call.escalation_score)),
    h("td", { class: "num" }, String(call.alerts ?? "")),
    h("td", { class: "num" }, String(call.notes ?? 0)),
    h("td", {}, stateSelect(call)));
}

async function load() {
  const values = formValues(form);
  rememberInUrl(values);
  const query = { ...values, limit: PAGE, offset };
  if (values.from) query.from = dayStart(values.from);
  if (values.to) query.to = dayStart(values.to, true);
  try {
    const out = await api(withQuery("/v1/queue", query));
    nextOffset = out.next_offset;
    byId("queue-rows").replaceChildren(...out.calls.map(row));
    byId("queue-empty").hidden = out.calls.length > 0;
    for (const [state, n] of Object.entries(out.counts)) {
      const badge = document.querySelector(`[data-count="${state}"]`);
      if (badge) badge.textContent = String(n);
    }
    for (const tab of byId("tabs").querySelectorAll("button")) {
      tab.setAttribute("aria-pressed", String(tab.dataset.state === (values.review || "new")));
    }
    byId("prev").disabled = offset === 0;
    byId("next").disabled = nextOffset === null;
    showBanner("");
  } catch (error) {
    showBanner(explainRefusal(error), "error");
  }
}

for (const tab of byId("tabs").querySelectorAll("button")) {
  tab.addEventListener("click", () => {
    byId("q-review").value = tab.dataset.state;
    offset = 0;
    load();
  });
}
form.addEventListener("submit", (event) => {
  event.preventDefault();
  offset = 0;
  load();
});
byId("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
byId("next").addEventListener("click", () => { if (nextOffset !== null) { offset = nextOffset; load(); } });

fillPickers(await loadTeams(), byId("q-team"), byId("agents"));
fillForm(form, params);
await load();
