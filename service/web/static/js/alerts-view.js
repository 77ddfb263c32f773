// Coaching cards on the agent's screen: newest first, a repeat of a rule still on screen bumps its count
// instead of stacking, every card can be dismissed, and only a few are shown so they never crowd the work.

import { h } from "./dom.js";
import { clock } from "./format.js";

const MAX_VISIBLE = 5;
const SEVERITY_WORD = { info: "Note", warning: "Heads-up", critical: "Important" };

export class AlertCards {
  constructor({ list, empty, more, dismissAll }) {
    this.list = list;
    this.empty = empty;
    this.more = more;
    this.dismissAll = dismissAll;
    this.cards = new Map(); // rule -> {node, ids: Set, count}
    dismissAll.addEventListener("click", () => this.clear());
  }

  clear() {
    this.cards.clear();
    this.list.replaceChildren();
    this.refresh();
  }

  add(alert) {
    const existing = this.cards.get(alert.rule);
    if (existing) {
      existing.ids.add(alert.id);
      existing.count += 1;
      this.fill(existing, alert);
      this.list.prepend(existing.node);
      this.flash(existing.node);
    } else {
      const card = { node: null, ids: new Set([alert.id]), count: 1 };
      card.node = this.build(alert, card);
      this.cards.set(alert.rule, card);
      this.list.prepend(card.node);
      this.flash(card.node);
    }
    this.refresh();
  }

  /** An alert withdrawn by the service (an "interruption" that was only "mm-hm"). */
  retract(alertId) {
    for (const [rule, card] of this.cards) {
      if (!card.ids.delete(alertId)) continue;
      card.count -= 1;
      if (card.count <= 0) this.remove(rule);
      else this.fill(card, null);
      this.refresh();
      return;
    }
  }

  remove(rule) {
    const card = this.cards.get(rule);
    if (!card) return;
    const next = card.node.nextElementSibling || card.node.previousElementSibling;
    const hadFocus = card.node.contains(document.activeElement);
    card.node.remove();
    this.cards.delete(rule);
    this.refresh();
    if (hadFocus) (next?.querySelector("button.dismiss") || this.list.closest("section"))?.focus?.();
  }

  build(alert, card) {
    const node = h("li", {
      class: "alert", "data-testid": "alert", dataset: { rule: alert.rule, severity: alert.severity || "info" },
    });
    card.message = h("span", { class: "alert-message" });
    card.badge = h("span", { class: "badge", "data-testid": "alert-count", title: "Times this came up" });
    card.time = h("span", { class: "num" });
    card.tip = h("p", { class: "alert-tip" });
    const dismiss = h("button", {
      class: "quiet dismiss", type: "button", "aria-label": "Dismiss", title: "Dismiss",
      onclick: () => this.remove(alert.rule),
    }, "×");
    node.append(
      h("div", { class: "alert-head" },
        h("span", { class: "visually-hidden" }, `${SEVERITY_WORD[alert.severity] || "Note"}: `),
        card.message,
        h("span", { class: "alert-meta" }, card.badge, card.time),
        dismiss),
      card.tip);
    card.node = node;
    this.fill(card, alert);
    return node;
  }

  fill(card, alert) {
    if (alert) {
      card.message.textContent = alert.message;
      card.tip.textContent = alert.tip || "";
      card.tip.hidden = !alert.tip;
      card.time.textContent = clock(alert.t);
      card.node.dataset.severity = alert.severity || "info";
    }
    card.badge.textContent = `×${card.count}`;
    card.badge.hidden = card.count < 2;
  }

  flash(node) {
    node.classList.remove("fresh");
    void node.offsetWidth; // restart the animation
    node.classList.add("fresh");
  }

  refresh() {
    const nodes = [...this.list.children];
    nodes.forEach((node, i) => { node.hidden = i >= MAX_VISIBLE; });
    const hidden = Math.max(0, nodes.length - MAX_VISIBLE);
    this.more.hidden = hidden === 0;
    this.more.textContent = hidden ? `${hidden} earlier ${hidden === 1 ? "tip" : "tips"} hidden` : "";
    this.empty.hidden = nodes.length > 0;
    this.dismissAll.hidden = nodes.length === 0;
  }
}
