// Line plots of one measure per leg over call time, drawn on <canvas>: the leg's values, its baseline
// (dashed), shaded raised-voice episodes, and alert ticks along the bottom. No chart library.

const PAD = { left: 44, right: 10, top: 8, bottom: 22 };
const GAP_S = 1.6; // points further apart than this are not joined: the leg was silent in between

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function niceStep(span, target) {
  const raw = span / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
}

function timeStep(duration) {
  return [5, 10, 15, 30, 60, 120, 300, 600, 1800].find((s) => duration / s <= 8) || 3600;
}

function label(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * series: [{leg, points: [[t, value]], baseline: [[t, value]]}], episodes: [{leg, start, end}],
 * marks: [{t, severity}], duration: seconds. Returns the number of points drawn.
 */
export function drawPlot(canvas, { series, episodes, marks, duration, floor }) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const values = series.flatMap((s) => [...s.points, ...s.baseline].map((p) => p[1]))
    .filter((v) => Number.isFinite(v) && (floor === undefined || v > floor));
  const total = Math.max(duration, 1);
  let low = values.length ? Math.min(...values) : 0;
  let high = values.length ? Math.max(...values) : 1;
  const margin = Math.max(2, (high - low) * 0.08);
  low -= margin;
  high += margin;
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + (plotW * t) / total;
  const y = (v) => PAD.top + plotH * (1 - (v - low) / (high - low));

  const muted = cssVar("--muted");
  const grid = cssVar("--border");
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = muted;
  ctx.strokeStyle = grid;
  ctx.lineWidth = 1;

  // Horizontal grid and value labels.
  const vStep = niceStep(high - low, 4);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let v = Math.ceil(low / vStep) * vStep; v <= high; v += vStep) {
    ctx.beginPath();
    ctx.moveTo(PAD.left, Math.round(y(v)) + 0.5);
    ctx.lineTo(width - PAD.right, Math.round(y(v)) + 0.5);
    ctx.stroke();
    ctx.fillText(String(Math.round(v)), PAD.left - 6, y(v));
  }
  // Time labels.
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const tStep = timeStep(total);
  for (let t = 0; t <= total; t += tStep) ctx.fillText(label(t), x(t), height - PAD.bottom + 6);

  // Raised-voice episodes, shaded in the leg's colour.
  for (const ep of episodes) {
    ctx.fillStyle = cssVar(`--${ep.leg}`);
    ctx.globalAlpha = 0.14;
    ctx.fillRect(x(ep.start), PAD.top, Math.max(2, x(ep.end) - x(ep.start)), plotH);
    ctx.globalAlpha = 0.7;
    ctx.fillRect(x(ep.start), PAD.top, Math.max(2, x(ep.end) - x(ep.start)), 3);
    ctx.globalAlpha = 1;
  }

  let drawn = 0;
  for (const s of series) {
    const color = cssVar(`--${s.leg}`);
    ctx.strokeStyle = color;
    ctx.lineWidth = 1;
    ctx.setLineDash([5, 4]);
    polyline(ctx, s.baseline, x, y, Infinity);
    ctx.setLineDash([]);
    ctx.lineWidth = 1.6;
    const points = s.points.filter((p) => floor === undefined || p[1] > floor);
    polyline(ctx, points, x, y, GAP_S);
    ctx.fillStyle = color;
    for (const [t, v] of points) ctx.fillRect(x(t) - 1, y(v) - 1, 2, 2);
    drawn += points.length;
  }

  // Alert ticks on the time axis.
  for (const mark of marks) {
    ctx.fillStyle = cssVar(`--${mark.severity === "critical" ? "critical" : mark.severity === "warning" ? "warning" : "info"}`);
    ctx.beginPath();
    ctx.moveTo(x(mark.t), PAD.top + plotH);
    ctx.lineTo(x(mark.t) - 4, PAD.top + plotH + 6);
    ctx.lineTo(x(mark.t) + 4, PAD.top + plotH + 6);
    ctx.fill();
  }
  canvas.dataset.points = String(drawn);
  return drawn;
}

function polyline(ctx, points, x, y, gap) {
  ctx.beginPath();
  let last = null;
  for (const [t, v] of points) {
    if (last === null || t - last > gap) ctx.moveTo(x(t), y(v));
    else ctx.lineTo(x(t), y(v));
    last = t;
  }
  ctx.stroke();
}

/** The x position of call time t in a plot canvas of this width, as a fraction of the element's width. */
export function plotFraction(canvas, t, duration) {
  const width = canvas.clientWidth;
  const plotW = width - PAD.left - PAD.right;
  return (PAD.left + (plotW * t) / Math.max(duration, 1)) / width;
}

/** The call time under a click at clientX on a plot canvas. */
export function plotTimeAt(canvas, clientX, duration) {
  const box = canvas.getBoundingClientRect();
  const plotW = box.width - PAD.left - PAD.right;
  return Math.min(duration, Math.max(0, ((clientX - box.left - PAD.left) / plotW) * duration));
}
