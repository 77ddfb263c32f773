// What a reviewer wants to know about a call at a glance, computed from its stored events.

const EMPATHY = new Set(["empathy", "apology", "acknowledgement"]);

/** Raised-voice episodes per leg: [{leg, start, end}]; an episode still open runs to `duration`. */
export function raisedEpisodes(events, duration) {
  const open = {};
  const episodes = [];
  for (const ev of events) {
    if (ev.type === "raised_voice" && !open[ev.leg]) open[ev.leg] = ev.start;
    if (ev.type === "raised_voice_end") {
      episodes.push({ leg: ev.leg, start: ev.start ?? open[ev.leg] ?? ev.end, end: ev.end });
      delete open[ev.leg];
    }
  }
  for (const [leg, start] of Object.entries(open)) episodes.push({ leg, start, end: duration });
  return episodes;
}

export function summarize(events, call) {
  const duration = call.duration || Math.max(0, ...events.map((e) => e.t || 0));
  const talk = { agent: 0, customer: 0 };
  let fromSegments = false;
  for (const ev of events) {
    if (ev.type === "speech_end" && ev.leg in talk) {
      talk[ev.leg] += ev.end - ev.start;
      fromSegments = true;
    }
  }
  if (!fromSegments) {
    for (const ev of events) if (ev.type === "prosody" && ev.leg in talk) talk[ev.leg] += ev.end - ev.start;
  }
  const retracted = new Set(events.filter((e) => e.type === "backchannel" && e.retracts)
    .map((e) => `${e.retracts.by}@${e.retracts.start}`));
  const interruptions = events.filter((e) => e.type === "interruption" && !retracted.has(`${e.by}@${e.start}`));
  const episodes = raisedEpisodes(events, duration);
  const customerRaised = episodes.filter((e) => e.leg === "customer");
  const escalations = events.filter((e) => (e.type === "raised_voice" && e.leg === "customer") ||
    (e.type === "phrase" && e.leg === "customer" && ["frustration", "manager_request", "churn_threat"].includes(e.category)));
  const firstEscalation = escalations.length ? Math.min(...escalations.map((e) => e.start ?? e.t)) : null;
  const empathy = events.filter((e) => e.type === "phrase" && e.leg === "agent" && EMPATHY.has(e.category));
  const deadAir = events.filter((e) => e.type === "dead_air");
  const withdrawn = new Set(events.filter((e) => e.type === "alert_retracted").map((e) => e.id));
  const alerts = events.filter((e) => e.type === "alert" && !withdrawn.has(e.id));
  return {
    duration,
    talk,
    interruptionsByAgent: interruptions.filter((e) => e.by === "agent").length,
    interruptionsByCustomer: interruptions.filter((e) => e.by === "customer").length,
    firstEscalation,
    customerRaisedSeconds: customerRaised.reduce((n, e) => n + Math.max(0, e.end - e.start), 0),
    agentRaisedEpisodes: episodes.filter((e) => e.leg === "agent").length,
    empathy,
    deadAir: deadAir.length,
    deadAirSeconds: deadAir.reduce((n, e) => n + (e.duration || 0), 0),
    alerts,
  };
}
