// Coaching notes: an agent reads the notes about their own calls, opens the moment each means and acknowledges it;
// a supervisor sees which notes were acknowledged.

import { byId, h } from "./dom.js";
import { clock, wallDateTime } from "./format.js";
import { api, explainRefusal, requireSession, showBanner } from "./session.js";
import { applyRole, callHref, fillForm, formValues, pageParams, rememberInUrl, withQuery } from "./coaching.js";

const PAGE = 50;
const session = await requireSession(["supervisor", "agent"]);
const isAgent = session.claims.role === "agent";
applyRole(session.claims);

const form = byId("notes-form");
if (isAgent) byId("n-agent").disabled = true;
let offset = 0;
let nextOffset = null;

function acknowledgement(note) {
  if (note.acknowledged_at) {
    return h("span", { class: "acked", "data-testid": "acknowledged" }, `✓ Acknowledged ${wallDateTime(note.acknowledged_at)}`);
  }
  if (!isAgent) return h("span", { class: "hint" }, "Not acknowledged yet");
  const button = h("button", { class: "primary", type: "button", "data-testid": "acknowledge" }, "Acknowledge");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const done = await api(`/v1/notes/${note.id}/acknowledge`, { method: "POST" });
      button.replaceWith(acknowledgement(done));
      byId("notes-status").textContent = "Acknowledged. Thank you.";
    } catch (error) {
      button.disabled = false;
      byId("notes-status").textContent = explainRefusal(error);
    }
  });
  return button;
}

function renderNote(note) {
  const moment = note.t === null || note.t === undefined ? "the whole call" : `at ${clock(note.t)}`;
  return h("li", { class: "coaching-note", "data-testid": "coaching-note", "data-note-id": note.id,
    "data-call-id": note.call_id, "data-acknowledged": String(Boolean(note.acknowledged_at)) },
  h("span", { class: "hint" }, `${note.author} · ${wallDateTime(note.created)} · `,
    h("a", { href: callHref(note.call_id, note.t) }, `call ${note.call_id}, ${moment}`),
    isAgent ? "" : ` · agent ${note.agent_id}`),
  h("p", {}, note.text),
  h("div", { class: "note-foot" }, acknowledgement(note)));
}

async function load() {
  const values = formValues(form);
  rememberInUrl(values);
  try {
    const out = await api(withQuery("/v1/notes", { ...values, limit: PAGE, offset }));
    nextOffset = out.next_offset;
    byId("coaching-notes").replaceChildren(...out.notes.map(renderNote));
    byId("notes-empty").hidden = out.notes.length > 0;
    byId("prev").disabled = offset === 0;
    byId("next").disabled = nextOffset === null;
    showBanner("");
  } catch (error) {
    showBanner(explainRefusal(error), "error");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  offset = 0;
  load();
});
byId("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
byId("next").addEventListener("click", () => { if (nextOffset !== null) { offset = nextOffset; load(); } });

fillForm(form, pageParams());
await load();
