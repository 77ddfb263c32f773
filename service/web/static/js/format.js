// Formatting of times, durations and numbers as people read them.

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

export function wallTime(epochSeconds) {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function wallDateTime(epochSeconds) {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toLocaleString([], {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

export function signed(value, digits = 0) {
  const fixed = Number(value).toFixed(digits);
  return value > 0 ? `+${fixed}` : fixed;
}

export function percent(part, whole) {
  return whole > 0 ? Math.round((100 * part) / whole) : 0;
}

export function legName(leg) {
  return leg === "agent" ? "Agent" : leg === "customer" ? "Customer" : String(leg || "");
}

export const RULE_TITLES = {
  interruption: "Talked over the customer",
  customer_raised_voice: "Customer's voice raised",
  customer_upset: "Customer upset",
  agent_voice_rising: "Your volume rising",
  dead_air: "Dead air",
  monologue: "Long monologue",
  fast_speech: "Speaking fast",
  no_empathy: "No acknowledgement yet",
  frustration: "Customer frustrated",
  manager_request: "Manager requested",
  churn_threat: "Customer may leave",
  customer_voice_raised: "Customer's voice stayed raised",
  agent_voice_raised: "Agent's voice stayed raised",
};

export function ruleTitle(rule) {
  return RULE_TITLES[rule] || String(rule || "alert").replaceAll("_", " ");
}
