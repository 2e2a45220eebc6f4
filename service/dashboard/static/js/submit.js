// Submit form: optional uploads (POST /v1/models, POST /v1/datasets), then POST /v1/jobs.
// The API validates everything; its problem+json `errors[].loc` are mapped to the fields.
import { ApiError, getJson, request, requireLogin, wireLogout } from "./api.js";
import { el, showError } from "./format.js";

const $ = (id) => document.getElementById(id);
const form = $("submit-form");
const statusLine = $("submit-status");
const INSPECT_POLL_MS = 1000;
const INSPECT_DEADLINE_MS = 180_000;

// API error location (after "body.") -> field id, per request.
const MODEL_FIELDS = { file: "model-file", arch: "model-arch", num_classes: "model-num-classes", input_shape: "model-input-shape", name: "model-name" };
const DATA_FIELDS = { file: "data-file", name: "data-name" };
const JOB_FIELDS = {
  model_id: "model-id",
  dataset_id: "dataset-id",
  target: "target-reduction",
  "target.metric": "target-metric",
  "target.reduction": "target-reduction",
  target_fit: "target-fit",
  structure_epochs: "structure-epochs",
  finetune_epochs: "finetune-epochs",
  batch_size: "batch-size",
  lr: "lr",
  seed: "seed",
  deployment: "auto-deployment",
  quantize: "quantize",
  channel_multiple: "channel-multiple",
  distill: "distill",
  distill_phases: "distill-phases",
};

function source(name) {
  return form.querySelector(`input[name="${name}"]:checked`).value;
}

function syncPanels() {
  for (const kind of ["model", "data"]) {
    const chosen = source(`${kind}-source`);
    for (const panel of form.querySelectorAll(`[data-source-panel^="${kind}-"]`)) {
      panel.hidden = panel.dataset.sourcePanel !== `${kind}-${chosen}`;
    }
  }
}

function clearErrors() {
  showError($("form-error"), "");
  for (const node of form.querySelectorAll(".field-error")) showError(node, "");
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

function fieldError(id, message) {
  const input = $(id);
  const box = $(`${id}-error`);
  if (!input || !box) return false;
  const previous = box.hidden ? "" : `${box.textContent} `;
  showError(box, previous + message);
  input.setAttribute("aria-invalid", "true");
  return true;
}

/** Put each validation error next to its field; the rest (and the detail) at the top. */
function showProblem(err, fields, what) {
  if (!(err instanceof ApiError)) {
    showError($("form-error"), `${what}: ${err.message}`);
    return;
  }
  const unplaced = [];
  let first = null;
  for (const { loc, msg } of err.fieldErrors) {
    const path = loc.replace(/^body\./, "");
    const id = fields[path] || fields[path.split(".")[0]];
    if (id && fieldError(id, msg)) first = first || id;
    else unplaced.push(msg);
  }
  if (!err.fieldErrors.length || unplaced.length) {
    showError($("form-error"), `${what}: ${unplaced.length ? unplaced.join("; ") : err.message}`);
  }
  if (first) $(first).focus();
  else $("form-error").scrollIntoView({ block: "center" });
}

function intOrText(value) {
  // Numbers go as numbers; what is not a number goes as typed so the API names the field.
  const trimmed = value.trim();
  if (trimmed === "") return undefined;
  const number = Number(trimmed);
  return Number.isFinite(number) ? number : trimmed;
}

class Handled extends Error {}

async function uploadModel() {
  const file = $("model-file").files[0];
  if (!file) {
    fieldError("model-file", "Choose a checkpoint file.");
    throw new Handled();
  }
  const data = new FormData();
  data.append("file", file);
  // Each may be left empty: the worker then reads it from the checkpoint.
  for (const [key, id] of [["arch", "model-arch"], ["num_classes", "model-num-classes"], ["input_shape", "model-input-shape"]]) {
    const value = $(id).value.trim();
    if (value) data.append(key, value);
  }
  if ($("model-name").value.trim()) data.append("name", $("model-name").value.trim());
  statusLine.textContent = "Uploading the checkpoint and checking that it loads…";
  let model;
  try {
    model = (await request("/v1/models", { method: "POST", form: data })).data;
  } catch (err) {
    showProblem(err, MODEL_FIELDS, "The checkpoint was refused");
    throw new Handled();
  }
  const deadline = Date.now() + INSPECT_DEADLINE_MS;
  while (model.status === "pending" && Date.now() < deadline) {
    statusLine.textContent = "Waiting for a worker to load the checkpoint…";
    await new Promise((resolve) => setTimeout(resolve, INSPECT_POLL_MS));
    model = await getJson(`/v1/models/${encodeURIComponent(model.id)}`);
  }
  if (model.status === "invalid") {
    fieldError("model-file", model.error || "The checkpoint cannot be used.");
    throw new Handled();
  }
  if (model.status !== "ready") {
    showError($("form-error"), `No worker inspected the checkpoint in time; model ${model.id} is still pending. Pick it under “Use an uploaded model” once it is ready.`);
    throw new Handled();
  }
  return model.id;
}

async function uploadDataset() {
  const file = $("data-file").files[0];
  if (!file) {
    fieldError("data-file", "Choose a dataset file.");
    throw new Handled();
  }
  const data = new FormData();
  data.append("file", file);
  if ($("data-name").value.trim()) data.append("name", $("data-name").value.trim());
  statusLine.textContent = "Uploading the data…";
  try {
    return (await request("/v1/datasets", { method: "POST", form: data })).data.id;
  } catch (err) {
    showProblem(err, DATA_FIELDS, "The data was refused");
    throw new Handled();
  }
}

function jobBody(modelId, datasetId) {
  const body = {
    model_id: modelId,
    dataset_id: datasetId,
    target: { metric: $("target-metric").value, reduction: intOrText($("target-reduction").value) },
    target_fit: $("target-fit").value,
    structure_epochs: intOrText($("structure-epochs").value),
    finetune_epochs: intOrText($("finetune-epochs").value),
    batch_size: intOrText($("batch-size").value),
    lr: intOrText($("lr").value),
    seed: intOrText($("seed").value),
    deployment: $("auto-deployment").value.trim() || undefined,
    quantize: $("quantize").value,
    channel_multiple: intOrText($("channel-multiple").value),
    distill: intOrText($("distill").value),
    distill_phases: $("distill-phases").value,
  };
  // Leave out empty optional fields: the API's defaults apply.
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  if (body.target.reduction === undefined) body.target.reduction = null;
  return body;
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const button = $("submit-job");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    let modelId = $("model-id").value;
    let datasetId = $("dataset-id").value;
    // Check both choices before uploading anything, so one mistake costs one round trip.
    if (source("model-source") === "existing" && !modelId) fieldError("model-id", "Pick a model.");
    if (source("data-source") === "existing" && !datasetId) fieldError("dataset-id", "Pick a dataset.");
    if (form.querySelector("[aria-invalid]")) throw new Handled();
    if (source("model-source") === "upload") modelId = await uploadModel();
    if (source("data-source") === "upload") datasetId = await uploadDataset();
    statusLine.textContent = "Submitting the job…";
    let job;
    try {
      job = (await request("/v1/jobs", { method: "POST", json: jobBody(modelId, datasetId) })).data;
    } catch (err) {
      showProblem(err, JOB_FIELDS, "The job was refused");
      throw new Handled();
    }
    statusLine.textContent = `Job ${job.id} queued.`;
    location.assign(`/jobs/${encodeURIComponent(job.id)}`);
  } catch (err) {
    if (!(err instanceof Handled)) showError($("form-error"), err.message);
    statusLine.textContent = "";
    await refreshChoices(); // an upload that succeeded can be reused without uploading again
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

async function fillSelect(select, path, label, keep) {
  const previous = keep ? select.value : "";
  try {
    const page = await getJson(path);
    const options = page.data.map((item) => el("option", { value: item.id, disabled: item.status && item.status !== "ready" }, label(item)));
    select.replaceChildren(el("option", { value: "" }, options.length ? "Choose…" : "Nothing uploaded yet"), ...options);
    select.value = previous;
  } catch (err) {
    select.replaceChildren(el("option", { value: "" }, `Could not load: ${err.message}`));
  }
}

// The architectures the workers can build (GET /v1/architectures): the zoo, then packages
// installed on the workers. The page ships the zoo's names, so the list works offline too.
async function fillArchitectures() {
  try {
    const page = await getJson("/v1/architectures");
    const options = page.data.map((a) => el("option", { value: a.name, label: a.source === "installed" ? `${a.name} (installed)` : a.name }));
    $("arch-options").replaceChildren(...options);
  } catch (err) {
    // Keep the zoo's names that the page was served with.
  }
}

async function refreshChoices() {
  await Promise.all([
    fillArchitectures(),
    fillSelect($("model-id"), "/v1/models?limit=200", (m) => `${m.arch ?? "?"} · ${m.name} · ${m.num_classes ?? "?"} classes · ${m.input_shape ? m.input_shape.join("×") : "?"}${m.max_reduction?.flops != null ? ` · flops ≤ ${m.max_reduction.flops.toFixed(3)}` : ""}${m.status === "ready" ? "" : ` (${m.status})`} · ${m.id}`, true),
    fillSelect($("dataset-id"), "/v1/datasets?limit=200", (d) => `${d.name} · ${d.samples} samples · ${d.classes.length} classes · ${d.input_shape.join("×")} · ${d.id}`, true),
  ]);
}

if (requireLogin()) {
  wireLogout();
  for (const radio of form.querySelectorAll('input[type="radio"]')) radio.addEventListener("change", syncPanels);
  syncPanels();
  form.addEventListener("submit", submit);
  refreshChoices();
}
