// The top of the job page: state badge, subtitle, failure or cancel notice, progress bar,
// phase steps, the job's settings, the one-line step text, and whether promotion is open.
import {
  duration,
  fixed,
  isNumber,
  localTime,
  parseTime,
  PHASE_LABELS,
  percent,
  setProgress,
  targetText,
  TERMINAL_STATES,
} from "./format.js";
import { $, fact, PHASE_ORDER, root, state } from "./job-page.js";

export function renderHeader() {
  const job = state.job;
  if (!job) return;
  const badge = $("job-state");
  badge.textContent = job.state;
  badge.dataset.state = job.state;
  root.dataset.state = job.state;
  const model = state.model;
  const parts = [model ? `${model.arch ?? "?"} · ${model.name}` : job.model_id, targetText(job.config.target)];
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

function renderPromote() {
  const ready = state.job && state.job.state === "succeeded";
  $("deployment-name").disabled = !ready;
  $("promote-submit").disabled = !ready;
  $("promote-hint").hidden = ready;
  if (ready && !$("deployment-name").value && state.job.deployment) $("deployment-name").value = state.job.deployment;
}

function endText(job) {
  const started = parseTime(job.started_at);
  const finished = parseTime(job.finished_at);
  const took = started && finished ? ` after ${duration((finished - started) / 1000)}` : "";
  if (job.state === "succeeded") return `Finished${took}.`;
  const where = job.phase ? ` during ${(PHASE_LABELS[job.phase] || job.phase).toLowerCase()}` : "";
  return `${job.state === "failed" ? "Failed" : "Canceled"}${where}${took}.`;
}

/** One progress event in a line: "Structure learning · epoch 2 / 3 · step 40 / 57 · loss …". */
export function stepText(event) {
  const parts = [PHASE_LABELS[event.phase] || event.phase];
  if (isNumber(event.epoch)) parts.push(`epoch ${event.epoch}${isNumber(event.epochs) ? ` / ${event.epochs}` : ""}`);
  if (isNumber(event.step)) parts.push(`step ${event.step}${isNumber(event.steps) ? ` / ${event.steps}` : ""}`);
  const m = event.metrics || {};
  if (isNumber(m.loss)) parts.push(`loss ${fixed(m.loss, 4)}`);
  if (isNumber(m.accuracy)) parts.push(`accuracy ${percent(m.accuracy)}`);
  if (event.message && !isNumber(event.step)) parts.push(event.message);
  return parts.join(" · ");
}
