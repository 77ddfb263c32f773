// Client-side downloads of a call's events and transcript, as JSON or CSV.

const EVENT_COLUMNS = ["t", "type", "leg", "by", "of", "start", "end", "duration", "rule", "severity", "category",
  "message", "text"];
const TRANSCRIPT_COLUMNS = ["leg", "start", "end", "language", "text"];

function csvCell(value) {
  if (value === undefined || value === null) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  // Quote always where needed; defuse spreadsheet formulas in free text.
  const safe = /^[=+\-@\t\r]/.test(text) && Number.isNaN(Number(text)) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function toCsv(rows, columns) {
  const lines = [columns.join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(","));
  return lines.join("\r\n") + "\r\n";
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** kind: "events.json" | "events.csv" | "transcript.json" | "transcript.csv" */
export function exportCall(kind, callId, events, transcript) {
  const base = `callwatch-${callId}`;
  if (kind === "events.json") download(`${base}-events.json`, "application/json", JSON.stringify(events, null, 2));
  else if (kind === "events.csv") download(`${base}-events.csv`, "text/csv", toCsv(events, EVENT_COLUMNS));
  else if (kind === "transcript.json") {
    download(`${base}-transcript.json`, "application/json", JSON.stringify(transcript, null, 2));
  } else if (kind === "transcript.csv") {
    download(`${base}-transcript.csv`, "text/csv", toCsv(transcript, TRANSCRIPT_COLUMNS));
  }
}
