// The succeeded job's results: the report (headline reductions, baseline vs pruned, checks,
// settings) and the published artifacts with their downloads.
import { download, getJson } from "./api.js";
import {
  bytes,
  compact,
  duration,
  el,
  fixed,
  isNumber,
  METRIC_LABELS,
  PHASE_LABELS,
  percent,
  reduction,
  showError,
  targetText,
} from "./format.js";
import { $, fact, jobId, state } from "./job-page.js";

// As the CLI words it: FLOPs are multiply-accumulates.
const KPI_LABELS = { ...METRIC_LABELS, flops: "FLOPs (MACs)" };

function reportTable(report) {
  const b = report.baseline || {};
  const p = report.pruned || {};
  const change = (before, after) => (isNumber(before) && isNumber(after) && before ? reduction(1 - after / before) : "–");
  const signed = (value, digits) => `${value < 0 ? "−" : "+"}${Math.abs(value).toFixed(digits)}`;
  const points = (before, after) => (isNumber(before) && isNumber(after) ? `${signed((after - before) * 100, 2)} pt` : "–");
  const rows = [
    ["FLOPs (MACs)", compact(b.flops), compact(p.flops), change(b.flops, p.flops)],
    ["Parameters", compact(b.params), compact(p.params), change(b.params, p.params)],
    ["Accuracy", percent(b.accuracy, 2), percent(p.accuracy, 2), points(b.accuracy, p.accuracy)],
    ["Loss", fixed(b.loss, 4), fixed(p.loss, 4), isNumber(b.loss) && isNumber(p.loss) ? signed(p.loss - b.loss, 4) : "–"],
  ];
  return el(
    "table",
    { class: "table table-compact", id: "report-table" },
    el("caption", { class: "visually-hidden" }, "Baseline and pruned model"),
    el("thead", {}, el("tr", {}, ["", "Baseline", "Pruned", "Change"].map((h) => el("th", { scope: "col", class: h ? "num" : "" }, h)))),
    el("tbody", {}, rows.map(([name, ...cells]) => el("tr", {}, el("th", { scope: "row" }, name), cells.map((c) => el("td", { class: "num" }, c))))),
  );
}

// What the job's int8 variant came to: published with its accuracy (and what it bought on
// the worker's CPU), or why it was held back.
function int8Text(int8) {
  if (!int8.published) return `not published: ${int8.reason || "see report.json"}`;
  const speed = int8.speed && int8.speed.int8_over_fp32;
  const parts = [`published, accuracy ${percent(int8.accuracy, 2)} (fp32 ${percent(int8.fp32_accuracy, 2)})`];
  if (isNumber(speed)) parts.push(`${speed.toFixed(2)}× fp32's speed on the worker's CPU`);
  // Which quantization plan the worker timed fastest, among those that kept their accuracy.
  const made = (int8.candidates || []).length;
  if (int8.plan) parts.push(`plan ${int8.plan}${made > 1 ? ` (the faster of ${made})` : ""}`);
  return parts.join(", ");
}

// How far the per-unit floors let the target's metric fall (reports since it was recorded):
// a target near it leaves structure learning little to choose, and the notes say so.
function reachableText(target) {
  const reachable = target && target.reachable;
  return isNumber(reachable) ? ` (the floors allow at most ${reduction(reachable)})` : "";
}

export function renderReport() {
  const report = state.report;
  if (!report) return;
  const achieved = report.achieved || {};
  const checks = report.checks || {};
  const timings = report.timings || {};
  const config = report.config || {};
  const maxDiff = (value) => (isNumber(value) ? value.toExponential(2) : "–");
  const headline = el(
    "div",
    { class: "kpis" },
    ["flops", "params", "channels"].map((key) =>
      el("div", { class: "kpi" }, el("span", { class: "kpi-value" }, reduction(achieved[key])), el("span", { class: "kpi-label" }, `${KPI_LABELS[key]} removed`)),
    ),
  );
  const details = el(
    "dl",
    { class: "facts" },
    fact("Target", targetText(report.target) + reachableText(report.target)),
    fact("Architecture", `${config.arch || "–"}, input ${Array.isArray(config.input_shape) ? config.input_shape.join("×") : "–"}`),
    fact("Classes", Array.isArray(config.classes) ? String(config.classes.length) : "–"),
    fact("Head re-initialised", config.head_reinitialised ? "yes" : "no"),
    fact("Masked vs pruned (max |Δ|)", maxDiff(checks.masked_vs_pruned_max_abs_diff)),
    fact("ONNX vs PyTorch (max |Δ|)", maxDiff(checks.onnx_vs_torch_max_abs_diff)),
    ...(report.int8 ? fact("INT8", int8Text(report.int8)) : []),
    fact("Time", Object.entries(timings).map(([phase, s]) => `${PHASE_LABELS[phase] || phase} ${duration(s)}`).join(" · ") || "–"),
  );
  const hyper = el(
    "details",
    {},
    el("summary", {}, "All settings"),
    el(
      "dl",
      { class: "facts facts-small" },
      Object.entries(config)
        .filter(([, v]) => v === null || typeof v !== "object")
        .map(([k, v]) => fact(k, String(v))),
    ),
  );
  const notes = Array.isArray(report.notes) ? report.notes.map((n) => el("p", { class: "muted small" }, n)) : [];
  $("report-body").replaceChildren(headline, reportTable(report), details, hyper, ...notes);
}

export async function renderArtifacts() {
  const list = $("artifacts");
  let artifacts;
  try {
    artifacts = await getJson(`/v1/jobs/${encodeURIComponent(jobId)}/artifacts`);
  } catch (err) {
    list.replaceChildren(el("li", { class: "muted" }, `Could not list artifacts: ${err.message}`));
    return;
  }
  if (!artifacts.length) {
    list.replaceChildren(el("li", { class: "muted" }, "No artifacts were published."));
    return;
  }
  list.replaceChildren(...artifacts.map(artifactItem));
}

function artifactItem(a) {
  const button = el("button", { type: "button", class: "btn btn-small", "data-artifact": a.name }, "Download");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await download(`/v1/jobs/${encodeURIComponent(jobId)}/artifacts/${encodeURIComponent(a.name)}`, a.name);
    } catch (err) {
      showError($("page-error"), `Download failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return el(
    "li",
    {},
    el("div", {}, el("span", { class: "artifact-name" }, a.name), el("span", { class: "muted small" }, ` ${bytes(a.size)}`)),
    el("div", { class: "artifact-sha muted small", title: a.sha256 }, `sha256 ${a.sha256.slice(0, 16)}…`),
    button,
  );
}
