// Job page. Data: GET /v1/jobs/{id} (+ its model for the baseline FLOPs), the live event
// stream GET /v1/jobs/{id}/events (replayed from the start, so curves and allocations are
// rebuilt for a finished job too), and once it succeeded GET /v1/jobs/{id}/report and
// /artifacts. This module loads, follows the stream and schedules redraws; the panels are
// drawn by job-header.js, job-curves.js, job-structure.js and job-report.js, the buttons
// wired by job-actions.js, and the shared state lives in job-page.js.
import { ApiError, followEvents, getJson, requireLogin, wireLogout } from "./api.js";
import { el, isNumber, showError, TERMINAL_STATES } from "./format.js";
import { wireCancel, wirePromote } from "./job-actions.js";
import { renderCurves } from "./job-curves.js";
import { renderHeader, stepText } from "./job-header.js";
import { $, jobId, recordEpoch, root, state } from "./job-page.js";
import { renderArtifacts, renderReport } from "./job-report.js";
import { renderStructure } from "./job-structure.js";

const ACTIVITY_LIMIT = 200;
const RENDERERS = { header: renderHeader, curves: renderCurves, structure: renderStructure };

// A replay can deliver thousands of events at once: coalesce the redraws they ask for.
const dirty = new Set();
let flushTimer = null;
let reportRequested = false;

function scheduleRender(...parts) {
  for (const part of parts) dirty.add(part);
  if (flushTimer === null) flushTimer = setTimeout(flushRender, 50);
}

function flushRender() {
  flushTimer = null;
  const parts = [...dirty];
  dirty.clear();
  for (const [part, render] of Object.entries(RENDERERS)) if (parts.includes(part)) render();
}

async function loadResults() {
  if (reportRequested || !state.job || state.job.state !== "succeeded") return;
  reportRequested = true;
  renderArtifacts();
  try {
    state.report = await getJson(`/v1/jobs/${encodeURIComponent(jobId)}/report`);
  } catch (err) {
    showError($("page-error"), `Could not load the report: ${err.message}`);
    return;
  }
  // The report's history is authoritative: it has every epoch even if events were trimmed.
  for (const record of state.report.history || []) recordEpoch(record, record.allocation || record.active, record.proposed);
  renderReport();
  renderCurves();
  renderStructure();
  root.dataset.reportLoaded = "true";
}

function logActivity(seq, text, kind) {
  const list = $("activity");
  list.prepend(el("li", { "data-kind": kind }, el("span", { class: "activity-seq muted" }, `#${seq ?? "–"}`), el("span", {}, text)));
  while (list.children.length > ACTIVITY_LIMIT) list.lastElementChild.remove();
}

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
      recordEpoch({ phase: data.phase, epoch: data.epoch, ...(data.metrics || {}) }, data.channels, data.proposed);
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
  followEvents(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
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
