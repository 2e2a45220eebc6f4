// Job page. Data: GET /v1/jobs/{id} (+ its model for the baseline FLOPs), the live event
// stream GET /v1/jobs/{id}/events (replayed from the start, so curves and allocations are
// rebuilt for a finished job too), and once it succeeded GET /v1/jobs/{id}/report and
// /artifacts. Actions: POST /v1/jobs/{id}/cancel, PUT /v1/deployments/{name}.
import { ApiError, download, followEvents, getJson, request, requireLogin, wireLogout } from "./api.js";
import {
  COLORS,
  barChart,
  formatCompact,
  formatPercent,
  lineChart,
  lineDataset,
  ramp,
  setData,
} from "./charts.js";
import {
  bytes,
  compact,
  duration,
  el,
  fixed,
  isNumber,
  localTime,
  parseTime,
  METRIC_LABELS,
  PHASE_LABELS,
  percent,
  reduction,
  setProgress,
  showError,
  targetText,
  TERMINAL_STATES,
} from "./format.js";

const root = document.getElementById("job-root");
const jobId = root.dataset.jobId;
const $ = (id) => document.getElementById(id);
const PHASE_ORDER = Object.keys(PHASE_LABELS);
const ACTIVITY_LIMIT = 200;

const state = {
  job: null,
  model: null,
  dataset: null,
  report: null,
  // "structure_learning:3" -> {phase, epoch, loss, accuracy, train_loss, train_accuracy, flops, params}
  epochs: new Map(),
  // structure-learning epoch -> {unit name: active channels after the target fit}
  allocations: new Map(),
  // structure-learning epoch -> {unit name: channels redistribution proposed}
  proposals: new Map(),
  stream: null,
  reportRequested: false,
};

const charts = {};
const EPOCH_MARKERS = ["circle", "triangle", "rect", "rectRot", "star", "crossRot", "rectRounded", "cross"];

// A replay can deliver thousands of events at once: coalesce the redraws they ask for.
const dirty = new Set();
let flushTimer = null;

function scheduleRender(...parts) {
  for (const part of parts) dirty.add(part);
  if (flushTimer === null) flushTimer = setTimeout(flushRender, 50);
}

function flushRender() {
  flushTimer = null;
  const parts = new Set(dirty);
  dirty.clear();
  if (parts.has("header")) renderHeader();
  if (parts.has("curves")) renderCurves();
  if (parts.has("structure")) renderStructure();
}

// ---------------------------------------------------------------------------- header ----

function renderHeader() {
  const job = state.job;
  if (!job) return;
  const badge = $("job-state");
  badge.textContent = job.state;
  badge.dataset.state = job.state;
  root.dataset.state = job.state;
  const model = state.model;
  const parts = [model ? `${model.arch} · ${model.name}` : job.model_id, targetText(job.config.target)];
  if (state.dataset) parts.push(`data: ${state.dataset.name} (${state.dataset.samples} samples)`);
  $("job-subtitle").textContent = parts.join(" — ");

  const running = job.state === "queued" || job.state === "running";
  const cancel = $("cancel-job");
  cancel.hidden = !running;
  cancel.disabled = Boolean(job.cancel_requested);
  cancel.textContent = job.cancel_requested ? "Cancel requested…" : "Cancel job";

  const failed = job.state === "failed";
  $("job-failure").hidden = !failed;
  if (failed) {
    $("job-error-type").textContent = job.error_type || "error";
    $("job-error-message").textContent = job.error_message || "No message was recorded.";
  }
  $("job-canceled").hidden = job.state !== "canceled";
  // A failed or canceled job never gets a report, artifacts or a promotion: drop the panels.
  const stopped = job.state === "failed" || job.state === "canceled";
  $("results").hidden = stopped;
  $("curves-card").hidden = stopped && state.epochs.size === 0;
  $("structure-card").hidden = stopped && state.allocations.size === 0;

  const progress = job.state === "succeeded" ? 1 : job.progress;
  const pct = setProgress($("job-progress"), progress, job.state);
  $("job-progress-text").textContent = `${pct} %`;
  renderPhases();
  renderFacts();
  if (TERMINAL_STATES.has(job.state)) $("job-step").textContent = endText(job);
  renderPromote();
}

function renderPhases() {
  const job = state.job;
  const current = PHASE_ORDER.indexOf(job.phase);
  for (const item of $("job-phases").children) {
    const index = PHASE_ORDER.indexOf(item.dataset.phase);
    let status = "todo";
    if (job.state === "succeeded" || index < current) status = "done";
    else if (index === current) status = TERMINAL_STATES.has(job.state) ? job.state : "active";
    item.dataset.status = status;
    if (status === "active") item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

function fact(term, value) {
  return [el("dt", {}, term), el("dd", {}, value)];
}

function renderFacts() {
  const job = state.job;
  const c = job.config || {};
  const facts = [
    ...fact("Target", targetText(c.target)),
    ...fact("Epochs", `${c.structure_epochs ?? "–"} structure + ${c.finetune_epochs ?? "–"} weight`),
    ...fact("Batch size · lr · seed", `${c.batch_size ?? "–"} · ${c.lr ?? "–"} · ${c.seed ?? "–"}`),
    ...fact("Created", localTime(job.created_at)),
    ...fact("Started", localTime(job.started_at)),
    ...fact("Finished", localTime(job.finished_at)),
    ...fact("Attempts", String(job.attempts)),
  ];
  if (job.deployment) facts.push(...fact("Promotes to", job.deployment));
  $("job-facts").replaceChildren(...facts);
}

function endText(job) {
  const started = parseTime(job.started_at);
  const finished = parseTime(job.finished_at);
  const took = started && finished ? ` after ${duration((finished - started) / 1000)}` : "";
  if (job.state === "succeeded") return `Finished${took}.`;
  const where = job.phase ? ` during ${(PHASE_LABELS[job.phase] || job.phase).toLowerCase()}` : "";
  return `${job.state === "failed" ? "Failed" : "Canceled"}${where}${took}.`;
}

function stepText(event) {
  const parts = [PHASE_LABELS[event.phase] || event.phase];
  if (isNumber(event.epoch)) parts.push(`epoch ${event.epoch}${isNumber(event.epochs) ? ` / ${event.epochs}` : ""}`);
  if (isNumber(event.step)) parts.push(`step ${event.step}${isNumber(event.steps) ? ` / ${event.steps}` : ""}`);
  const m = event.metrics || {};
  if (isNumber(m.loss)) parts.push(`loss ${fixed(m.loss, 4)}`);
  if (isNumber(m.accuracy)) parts.push(`accuracy ${percent(m.accuracy)}`);
  if (event.message && !isNumber(event.step)) parts.push(event.message);
  return parts.join(" · ");
}

// ---------------------------------------------------------------------------- charts ----

function ensureCharts() {
  if (charts.loss || !window.Chart) return;
  charts.loss = lineChart($("chart-loss"), { yTitle: "loss", yFormat: (v) => fixed(v, 3) });
  charts.accuracy = lineChart($("chart-accuracy"), { yTitle: "accuracy", yFormat: formatPercent, yMin: 0, yMax: 1 });
  charts.flops = lineChart($("chart-flops"), { yTitle: "FLOPs (MACs)", yFormat: formatCompact, yMin: 0 });
  charts.channels = barChart($("chart-channels"), { yTitle: "channels" });
  charts.allocation = lineChart($("chart-allocation"), { yTitle: "active channels" });
  charts.allocation.options.scales.x.title.text = "unit";
  charts.allocation.options.scales.x.ticks = { autoSkip: false, maxRotation: 60 };
}

function epochRows() {
  return [...state.epochs.values()].sort(
    (a, b) => PHASE_ORDER.indexOf(a.phase) - PHASE_ORDER.indexOf(b.phase) || a.epoch - b.epoch,
  );
}

function epochLabel(row) {
  return `${row.phase === "structure_learning" ? "S" : "W"}${row.epoch}`;
}

function baselineCost(metric) {
  const fromReport = state.report && state.report.baseline && state.report.baseline[metric];
  if (isNumber(fromReport)) return fromReport;
  const fromModel = state.model && state.model[metric];
  return isNumber(fromModel) ? fromModel : null;
}

function costMetric() {
  const metric = state.job && state.job.config.target && state.job.config.target.metric;
  return metric === "params" ? "params" : "flops";
}

function renderCurves() {
  ensureCharts();
  const rows = epochRows();
  $("curves-empty").hidden = rows.length > 0;
  $("curves-grid").hidden = rows.length === 0;
  if (!charts.loss) return;
  const labels = rows.map(epochLabel);
  const col = (key) => rows.map((r) => (isNumber(r[key]) ? r[key] : null));
  setData(charts.loss, labels, [
    lineDataset("train", col("train_loss"), COLORS.slate, { dashed: true }),
    lineDataset("test", col("loss"), COLORS.blue),
  ]);
  setData(charts.accuracy, labels, [
    lineDataset("train", col("train_accuracy"), COLORS.slate, { dashed: true }),
    lineDataset("test", col("accuracy"), COLORS.teal),
  ]);

  const metric = costMetric();
  const caption = $("chart-flops").closest("figure").querySelector("figcaption");
  caption.textContent = metric === "params" ? "Parameters of the active structure" : "FLOPs (MACs) of the active structure";
  charts.flops.options.scales.y.title.text = metric === "params" ? "parameters" : "FLOPs (MACs)";
  const datasets = [{ ...lineDataset(METRIC_LABELS[metric], col(metric), COLORS.blue, { fill: true }), order: 1 }];
  const target = state.job && state.job.config.target;
  const base = baselineCost(metric);
  if (target && target.metric === metric && isNumber(base) && rows.length) {
    const goal = (1 - target.reduction) * base;
    // order 0: drawn last, so the target stays visible where the curve reaches it.
    datasets.push({ ...lineDataset(`target (${reduction(target.reduction, 0)})`, rows.map(() => goal), COLORS.target, { dashed: true, points: false }), order: 0 });
  }
  if (isNumber(base) && rows.length) {
    datasets.push({ ...lineDataset("baseline", rows.map(() => base), COLORS.slate, { dashed: true, points: false }), order: 2 });
  }
  setData(charts.flops, labels, datasets);
}

function renderStructure() {
  ensureCharts();
  const units = state.report && Array.isArray(state.report.units) ? state.report.units : null;
  const epochs = [...state.allocations.keys()].sort((a, b) => a - b);
  $("structure-empty").hidden = Boolean(units) || epochs.length > 0;
  $("structure-grid").hidden = !units && epochs.length === 0;
  root.dataset.allocationEpochs = String(epochs.length);
  if (!charts.channels) return;

  const names = units ? units.map((u) => u.name) : Object.keys(state.allocations.get(epochs[0]) || {});
  const caption = $("chart-channels").closest("figure").querySelector("figcaption");
  if (units) {
    caption.textContent = "Channels per unit: before vs after";
    setData(charts.channels, names, [
      { label: "before", data: units.map((u) => u.channels_before), backgroundColor: COLORS.before, borderRadius: 2 },
      { label: "after", data: units.map((u) => u.channels_after), backgroundColor: COLORS.after, borderRadius: 2 },
    ]);
    root.dataset.channelUnits = String(units.length);
  } else if (epochs.length) {
    // Until the report names the original widths, show where the allocation stands now.
    const latest = epochs[epochs.length - 1];
    caption.textContent = `Active channels per unit after epoch ${latest} (before pruning)`;
    setData(charts.channels, names, [
      { label: `active after epoch ${latest}`, data: names.map((n) => state.allocations.get(latest)[n] ?? null), backgroundColor: COLORS.after, borderRadius: 2 },
    ]);
  }
  // One colour and one marker per epoch; the allocation kept after the target fit is solid,
  // what redistribution proposed is dashed, so the fit's changes show as gaps between them.
  const colors = ramp(epochs.length);
  const datasets = [];
  epochs.forEach((epoch, i) => {
    const marker = EPOCH_MARKERS[i % EPOCH_MARKERS.length];
    const series = (label, widths, dashed) => ({
      ...lineDataset(label, names.map((n) => widths[n] ?? null), colors[i], { dashed, points: epochs.length <= 12 }),
      pointStyle: marker,
      tension: 0,
    });
    datasets.push(series(`after epoch ${epoch}`, state.allocations.get(epoch), false));
    const proposed = state.proposals.get(epoch);
    if (proposed) datasets.push(series(`proposed in epoch ${epoch}`, proposed, true));
  });
  if (units) {
    datasets.unshift(lineDataset("capacity", units.map((u) => u.channels_before), COLORS.before, { dashed: true, points: false }));
  }
  setData(charts.allocation, names, datasets);
}

// ---------------------------------------------------------------------------- report ----

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

function renderReport() {
  const report = state.report;
  if (!report) return;
  const achieved = report.achieved || {};
  const checks = report.checks || {};
  const timings = report.timings || {};
  const config = report.config || {};
  const headline = el(
    "div",
    { class: "kpis" },
    ["flops", "params", "channels"].map((key) =>
      el("div", { class: "kpi" }, el("span", { class: "kpi-value" }, reduction(achieved[key])), el("span", { class: "kpi-label" }, `${METRIC_LABELS[key]} removed`)),
    ),
  );
  const details = el(
    "dl",
    { class: "facts" },
    fact("Target", targetText(report.target)),
    fact("Architecture", `${config.arch || "–"}, input ${Array.isArray(config.input_shape) ? config.input_shape.join("×") : "–"}`),
    fact("Classes", Array.isArray(config.classes) ? String(config.classes.length) : "–"),
    fact("Head re-initialised", config.head_reinitialised ? "yes" : "no"),
    fact("Masked vs pruned (max |Δ|)", isNumber(checks.masked_vs_pruned_max_abs_diff) ? checks.masked_vs_pruned_max_abs_diff.toExponential(2) : "–"),
    fact("ONNX vs PyTorch (max |Δ|)", isNumber(checks.onnx_vs_torch_max_abs_diff) ? checks.onnx_vs_torch_max_abs_diff.toExponential(2) : "–"),
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

async function renderArtifacts() {
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
  list.replaceChildren(
    ...artifacts.map((a) => {
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
    }),
  );
}

async function loadResults() {
  if (state.reportRequested || !state.job || state.job.state !== "succeeded") return;
  state.reportRequested = true;
  renderArtifacts();
  try {
    state.report = await getJson(`/v1/jobs/${encodeURIComponent(jobId)}/report`);
  } catch (err) {
    showError($("page-error"), `Could not load the report: ${err.message}`);
    return;
  }
  // The report's history is authoritative: it has every epoch even if events were trimmed.
  for (const record of state.report.history || []) {
    state.epochs.set(`${record.phase}:${record.epoch}`, record);
    const kept = record.allocation || record.active;
    if (kept && typeof kept === "object") state.allocations.set(record.epoch, kept);
    if (record.proposed && typeof record.proposed === "object") state.proposals.set(record.epoch, record.proposed);
  }
  renderReport();
  renderCurves();
  renderStructure();
  root.dataset.reportLoaded = "true";
}

// -------------------------------------------------------------------------- activity ----

function logActivity(seq, text, kind) {
  const list = $("activity");
  list.prepend(el("li", { "data-kind": kind }, el("span", { class: "activity-seq muted" }, `#${seq ?? "–"}`), el("span", {}, text)));
  while (list.children.length > ACTIVITY_LIMIT) list.lastElementChild.remove();
}

// ---------------------------------------------------------------------------- events ----

function onEvent(kind, data, seq) {
  const job = state.job;
  if (kind === "state") {
    job.state = data.state;
    const extra = data.error_message ? `: ${data.error_message}` : data.reason ? ` (${data.reason})` : "";
    logActivity(seq, `state → ${data.state}${extra}`, kind);
    scheduleRender("header");
    if (TERMINAL_STATES.has(data.state)) refreshJob();
    return;
  }
  if (kind === "progress" || kind === "epoch") {
    if (data.phase) job.phase = data.phase;
    if (isNumber(data.progress) && job.state !== "succeeded") job.progress = data.progress;
    $("job-step").textContent = stepText(data);
    if (kind === "epoch" && isNumber(data.epoch)) {
      state.epochs.set(`${data.phase}:${data.epoch}`, { phase: data.phase, epoch: data.epoch, ...(data.metrics || {}) });
      if (data.channels && typeof data.channels === "object") state.allocations.set(data.epoch, data.channels);
      if (data.proposed && typeof data.proposed === "object") state.proposals.set(data.epoch, data.proposed);
      logActivity(seq, stepText(data), kind);
      scheduleRender("curves", "structure");
    } else if (!isNumber(data.step)) {
      logActivity(seq, stepText(data), kind);
    }
    scheduleRender("header");
    return;
  }
  if (kind === "log") logActivity(seq, data.message || JSON.stringify(data), kind);
}

async function refreshJob() {
  try {
    state.job = await getJson(`/v1/jobs/${encodeURIComponent(jobId)}`);
  } catch (err) {
    showError($("page-error"), `Could not load the job: ${err.message}`);
    return;
  }
  renderHeader();
  loadResults();
}

function startStream() {
  state.stream = followEvents(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
    onEvent,
    onStatus(status, err) {
      root.dataset.stream = status;
      if (status === "reconnecting") showError($("page-error"), "Connection lost; reconnecting…");
      else if (status === "error") showError($("page-error"), `Live updates stopped: ${err.message}`);
      else showError($("page-error"), "");
      if (status === "ended") refreshJob();
    },
  });
}

// --------------------------------------------------------------------------- actions ----

function wireCancel() {
  const button = $("cancel-job");
  button.addEventListener("click", async () => {
    if (!window.confirm(`Cancel job ${jobId}? A running job stops within one training step.`)) return;
    button.disabled = true;
    try {
      state.job = (await request(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" })).data;
      renderHeader();
    } catch (err) {
      showError($("page-error"), `Cancel failed: ${err.message}`);
      button.disabled = false;
    }
  });
}

function renderPromote() {
  const ready = state.job && state.job.state === "succeeded";
  $("deployment-name").disabled = !ready;
  $("promote-submit").disabled = !ready;
  $("promote-hint").hidden = ready;
  if (ready && !$("deployment-name").value && state.job.deployment) $("deployment-name").value = state.job.deployment;
}

function wirePromote() {
  const form = $("promote-form");
  const input = $("deployment-name");
  const error = $("deployment-name-error");
  const result = $("promote-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    input.removeAttribute("aria-invalid");
    result.hidden = true;
    const name = input.value.trim();
    if (!name) {
      showError(error, "Enter a deployment name.");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    $("promote-submit").disabled = true;
    try {
      const { data } = await request(`/v1/deployments/${encodeURIComponent(name)}`, { method: "PUT", json: { job_id: jobId } });
      result.replaceChildren(
        `Promoted: ${data.name} now serves version ${data.current_version}. `,
        el("a", { href: "/deployments" }, "See deployments"),
      );
      result.hidden = false;
    } catch (err) {
      const message = err instanceof ApiError && err.fieldErrors.length ? err.fieldErrors.map((e) => e.msg).join("; ") : err.message;
      showError(error, message);
      input.setAttribute("aria-invalid", "true");
    } finally {
      $("promote-submit").disabled = false;
    }
  });
}

// ------------------------------------------------------------------------------ main ----

async function main() {
  wireLogout();
  wireCancel();
  wirePromote();
  try {
    state.job = await getJson(`/v1/jobs/${encodeURIComponent(jobId)}`);
  } catch (err) {
    const message = err instanceof ApiError && err.status === 404 ? `There is no job ${jobId}.` : `Could not load the job: ${err.message}`;
    showError($("page-error"), message);
    $("job-subtitle").textContent = "";
    $("job-state").hidden = true;
    $("job-panels").hidden = true;
    return;
  }
  renderHeader();
  const [model, dataset] = await Promise.allSettled([
    getJson(`/v1/models/${encodeURIComponent(state.job.model_id)}`),
    getJson(`/v1/datasets/${encodeURIComponent(state.job.dataset_id)}`),
  ]);
  if (model.status === "fulfilled") state.model = model.value;
  if (dataset.status === "fulfilled") state.dataset = dataset.value;
  renderHeader();
  renderCurves();
  renderStructure();
  startStream();
  loadResults();
}

if (requireLogin()) main();
