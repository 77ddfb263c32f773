// The customer-tone and own-volume meters: where a voice is now against that speaker's own usual level,
// from the service's `prosody` events (loudness dBFS and pitch Hz with their baselines, every 0.5 s of speech).

import { h } from "./dom.js";
import { signed } from "./format.js";

const SCALE_MIN_DB = -10;
const SCALE_MAX_DB = 15;
const RISING_DB = 4;
const RAISED_DB = 7;
const SMOOTHING = 0.45; // weight of the newest block
const QUIET_AFTER_MS = 4000;

export class VoiceMeter {
  constructor(container, { label, words }) {
    this.words = words; // {calm, rising, raised}
    this.delta = 0;
    this.lastHeard = 0;
    this.state = h("span", { class: "meter-state", dataset: { level: "calm" } }, "—");
    this.reading = h("span", { class: "meter-reading" }, "Learning the usual level…");
    this.needle = h("div", { class: "meter-needle" });
    this.meter = h("div", {
      class: "meter meter-track", role: "meter", "aria-label": label,
      "aria-valuemin": SCALE_MIN_DB, "aria-valuemax": SCALE_MAX_DB, "aria-valuenow": 0,
      "aria-valuetext": "no reading yet", dataset: { quiet: "true" },
    }, h("div", { class: "meter-baseline" }), this.needle);
    container.replaceChildren(
      h("div", { class: "meter-top" }, h("span", { class: "meter-name" }, label), this.state),
      this.meter,
      h("div", { class: "meter-scale", "aria-hidden": "true" }, h("span", {}, "quieter"),
        h("span", { class: "meter-usual" }, "usual"), h("span", {}, "raised")),
      this.reading);
    this.place(0);
  }

  reset() {
    this.delta = 0;
    this.lastHeard = 0;
    this.state.textContent = "—";
    this.state.dataset.level = "calm";
    this.reading.textContent = "Learning the usual level…";
    this.meter.dataset.quiet = "true";
    this.place(0);
  }

  update(prosody) {
    const base = prosody.baseline_loudness_db;
    if (base === null || base === undefined || prosody.loudness_db === null) return;
    const delta = prosody.loudness_db - base;
    this.delta = this.lastHeard ? this.delta + SMOOTHING * (delta - this.delta) : delta;
    this.lastHeard = performance.now();
    const level = this.delta >= RAISED_DB ? "raised" : this.delta >= RISING_DB ? "rising" : "calm";
    let pitch = "";
    if (prosody.baseline_pitch_hz && prosody.pitch_hz > 0) {
      const st = 12 * Math.log2(prosody.pitch_hz / prosody.baseline_pitch_hz);
      pitch = ` · pitch ${signed(st, 1)} st`;
    }
    const text = `${signed(this.delta, 0)} dB against the usual${pitch}`;
    this.state.textContent = this.words[level];
    this.state.dataset.level = level;
    this.reading.textContent = text;
    this.meter.dataset.quiet = "false";
    this.meter.setAttribute("aria-valuenow", this.delta.toFixed(1));
    this.meter.setAttribute("aria-valuetext", `${this.words[level]}, ${text}`);
    this.place(this.delta);
  }

  /** Called every second: a voice not heard for a while is shown as quiet, needle resting at usual. */
  tick(now) {
    if (this.lastHeard && now - this.lastHeard > QUIET_AFTER_MS && this.meter.dataset.quiet !== "true") {
      this.meter.dataset.quiet = "true";
      this.state.textContent = this.words.quiet;
      this.state.dataset.level = "calm";
      this.place(0);
      this.delta = 0;
    }
  }

  place(delta) {
    const clamped = Math.min(SCALE_MAX_DB, Math.max(SCALE_MIN_DB, delta));
    this.needle.style.left = `${(100 * (clamped - SCALE_MIN_DB)) / (SCALE_MAX_DB - SCALE_MIN_DB)}%`;
  }
}

/** Who has held the floor: seconds of speech per leg, summed from prosody blocks. */
export class TalkRatio {
  constructor(container) {
    this.container = container;
    this.reset();
  }

  reset() {
    this.seconds = { agent: 0, customer: 0 };
    this.render();
  }

  add(leg, seconds) {
    if (!(leg in this.seconds) || !(seconds > 0)) return;
    this.seconds[leg] += seconds;
  }

  render() {
    const { agent, customer } = this.seconds;
    const total = agent + customer;
    const agentShare = total ? Math.round((100 * agent) / total) : 50;
    const note = total > 60 && agentShare > 70 ? "You are doing most of the talking; leave room for the customer." :
      total ? "" : "Measured as the call goes.";
    this.container.replaceChildren(
      h("div", { class: "meter-top" }, h("span", { class: "meter-name", id: "ratio-title" }, "Talk / listen"),
        h("span", { class: "meter-reading num" }, total ? `${agentShare}% / ${100 - agentShare}%` : "—")),
      h("div", { class: "ratio-bar", role: "img",
        "aria-label": `You talked ${agentShare}%, the customer ${100 - agentShare}%` },
      h("span", { class: "ratio-agent", style: { width: `${agentShare}%` } }),
      h("span", { class: "ratio-customer", style: { width: `${100 - agentShare}%` } })),
      h("div", { class: "ratio-legend" }, h("span", { class: "leg-agent" }, "You"),
        h("span", { class: "leg-customer" }, "Customer")),
      note ? h("p", { class: "hint" }, note) : "");
  }
}
