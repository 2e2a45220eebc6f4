// Number formatting and tiny DOM helpers shared by the pages. Everything that comes from the
// API is put into the page as text (textContent), never as HTML.

// The job states and phases of edgeprune/contracts/jobs.py, in its order (the pages cannot
// import Python: tests/contracts/test_dashboard_vocabulary.py checks these against it).
export const JOB_STATES = ["queued", "running", "succeeded", "failed", "canceled"];
export const TERMINAL_STATES = new Set(["succeeded", "failed", "canceled"]);
export const PHASE_LABELS = {
  calibrating: "Calibrating",
  structure_learning: "Structure learning",
  pruning: "Pruning",
  weight_learning: "Weight learning",
  exporting: "Exporting",
};

export const METRIC_LABELS = { flops: "FLOPs", params: "Params", channels: "Channels" };

/** el("td", {class: "num"}, "text", childNode, ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** 0.4862 -> "48.6 %" */
export function percent(value, digits = 1) {
  return isNumber(value) ? `${(value * 100).toFixed(digits)} %` : "–";
}

/** A reduction as a signed change: 0.4862 -> "−48.6 %" */
export function reduction(value, digits = 1) {
  return isNumber(value) ? `−${(value * 100).toFixed(digits)} %` : "–";
}

/** 1234567 -> "1.23 M" */
export function compact(value, digits = 3) {
  if (!isNumber(value)) return "–";
  const units = [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  for (const [size, suffix] of units) {
    if (Math.abs(value) >= size) return `${Number((value / size).toPrecision(digits))} ${suffix}`;
  }
  return String(Number(value.toPrecision(digits)));
}

export function bytes(value) {
  if (!isNumber(value)) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = value;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function fixed(value, digits = 3) {
  return isNumber(value) ? value.toFixed(digits) : "–";
}

export function parseTime(value) {
  if (!value) return null;
  // The API's timestamps are UTC; SQLite may hand them back without an offset.
  const text = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago" */
export function age(value, now = Date.now()) {
  const date = parseTime(value);
  if (!date) return "–";
  const seconds = Math.max(0, Math.round((now - date.getTime()) / 1000));
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} d ago`;
}

export function duration(seconds) {
  if (!isNumber(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 90) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function localTime(value) {
  const date = parseTime(value);
  return date ? date.toLocaleString() : "–";
}

export function stateBadge(state) {
  return el("span", { class: "badge", "data-state": state || "" }, state || "unknown");
}

/** A progress bar (div with role=progressbar) for a 0..1 fraction. */
export function progressBar(fraction, state, label) {
  const pct = Math.round(Math.min(Math.max(fraction || 0, 0), 1) * 100);
  const bar = el(
    "div",
    {
      class: "progress",
      role: "progressbar",
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": pct,
      "aria-label": label,
      "data-state": state || "",
    },
    el("span"),
  );
  bar.firstChild.style.width = `${pct}%`;
  return bar;
}

export function setProgress(bar, fraction, state) {
  const pct = Math.round(Math.min(Math.max(fraction || 0, 0), 1) * 100);
  bar.setAttribute("aria-valuenow", String(pct));
  bar.dataset.state = state || "";
  bar.firstElementChild.style.width = `${pct}%`;
  return pct;
}

export function targetText(target) {
  if (!target || typeof target !== "object") return "–";
  return `${METRIC_LABELS[target.metric] || target.metric} ${reduction(target.reduction, 0)}`;
}

export function showError(node, message) {
  if (!node) return;
  node.textContent = message || "";
  node.hidden = !message;
}
