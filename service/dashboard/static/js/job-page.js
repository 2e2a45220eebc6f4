// What the job page knows: the job, its model and dataset, the report once published, and
// the epochs and allocations gathered from the event stream (or from the report's history).
// The other job-*.js modules read it; job.js fills it.
import { el, isNumber, PHASE_LABELS } from "./format.js";

export const root = document.getElementById("job-root");
export const jobId = root.dataset.jobId;
export const $ = (id) => document.getElementById(id);
export const PHASE_ORDER = Object.keys(PHASE_LABELS);

export const state = {
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
};

/** One finished epoch, from a live `epoch` event or from the report's history. */
export function recordEpoch(record, kept, proposed) {
  state.epochs.set(`${record.phase}:${record.epoch}`, record);
  if (kept && typeof kept === "object") state.allocations.set(record.epoch, kept);
  if (proposed && typeof proposed === "object") state.proposals.set(record.epoch, proposed);
}

/** Every epoch seen so far, structure learning first, then weight learning. */
export function epochRows() {
  return [...state.epochs.values()].sort(
    (a, b) => PHASE_ORDER.indexOf(a.phase) - PHASE_ORDER.indexOf(b.phase) || a.epoch - b.epoch,
  );
}

/** The job's own target metric when it is a cost (FLOPs or params); FLOPs otherwise. */
export function costMetric() {
  const metric = state.job && state.job.config.target && state.job.config.target.metric;
  return metric === "params" ? "params" : "flops";
}

/** The unpruned network's cost: measured in the report, else counted at upload. */
export function baselineCost(metric) {
  const fromReport = state.report && state.report.baseline && state.report.baseline[metric];
  if (isNumber(fromReport)) return fromReport;
  const fromModel = state.model && state.model[metric];
  return isNumber(fromModel) ? fromModel : null;
}

/** A term and its value for a <dl class="facts">. */
export function fact(term, value) {
  return [el("dt", {}, term), el("dd", {}, value)];
}
