// Jobs list: GET /v1/jobs (newest first, optional ?state=), refreshed in place whenever the
// live feed of job changes (SSE, GET /v1/jobs/events) reports one; a slow poll is the
// safety net if the feed is down. The state filter lives in the URL (?state=...).
import { followEvents, getJson, requireLogin, wireLogout } from "./api.js";
import {
  age,
  duration,
  el,
  isNumber,
  JOB_STATES,
  METRIC_LABELS,
  PHASE_LABELS,
  parseTime,
  percent,
  progressBar,
  reduction,
  showError,
  stateBadge,
  targetText,
} from "./format.js";

// With the feed live, the poll only catches what a dropped connection missed.
const REFRESH_MS = 15000;
const HIDDEN_REFRESH_MS = 60000;
// Many events arrive per second while a job trains: refresh at most this often.
const FEED_DEBOUNCE_MS = 400;

const body = document.getElementById("jobs-body");
const filter = document.getElementById("state-filter");
const errorBox = document.getElementById("jobs-error");
const countLine = document.getElementById("jobs-count");
let models = new Map();
let datasets = new Map();
let timer = null;
let pending = null;

function refreshSoon() {
  if (pending !== null) return;
  pending = setTimeout(() => {
    pending = null;
    refresh();
  }, FEED_DEBOUNCE_MS);
}

function currentState() {
  const state = new URLSearchParams(location.search).get("state");
  return JOB_STATES.includes(state) ? state : "";
}

function achievedCell(job) {
  const achieved = job.summary && job.summary.achieved;
  if (!achieved) return el("td", { class: "muted" }, "–");
  const parts = ["flops", "params"]
    .filter((key) => isNumber(achieved[key]))
    .map((key) => el("span", { class: "chip" }, `${METRIC_LABELS[key]} ${reduction(achieved[key])}`));
  return el("td", {}, parts.length ? parts : "–");
}

function accuracyCell(job) {
  const s = job.summary || {};
  if (!isNumber(s.accuracy_before) && !isNumber(s.accuracy_after)) {
    return el("td", { class: "muted" }, "–");
  }
  return el("td", { class: "nowrap" }, `${percent(s.accuracy_before)} → ${percent(s.accuracy_after)}`);
}

function epochLine(job) {
  const m = job.metrics || {};
  if (job.state !== "running" || !isNumber(m.epoch)) return null;
  return el("div", { class: "muted small" }, `epoch ${m.epoch}${isNumber(m.epochs) ? ` / ${m.epochs}` : ""}`);
}

function modelLabel(job) {
  const model = models.get(job.model_id);
  return model ? `${model.arch ?? "?"} · ${model.name}` : job.model_id;
}

// What the job compressed, on what data, for which fleet: "vgg11 · cam-net on pets → cams".
function jobContext(job) {
  const dataset = datasets.get(job.dataset_id);
  const data = dataset ? dataset.name : job.dataset_id;
  return `${modelLabel(job)} on ${data}${job.deployment ? ` → ${job.deployment}` : ""}`;
}

// How long it ran (finished jobs) or has been running; the age of queued ones.
function timeCell(job) {
  const started = parseTime(job.started_at);
  const finished = parseTime(job.finished_at);
  if (started) {
    const end = finished ? finished.getTime() : Date.now();
    const took = duration(Math.max(0, (end - started.getTime()) / 1000));
    return el(
      "td",
      { class: "nowrap", title: `created ${job.created_at}`, "data-duration": "" },
      finished ? `took ${took}` : `running ${took}`,
      el("div", { class: "muted small" }, age(job.created_at)),
    );
  }
  return el("td", { class: "nowrap", title: job.created_at }, age(job.created_at));
}

function row(job) {
  const progress = job.state === "succeeded" ? 1 : job.progress;
  let phase = PHASE_LABELS[job.phase] || "–";
  if (job.state === "succeeded") phase = "Done";
  else if (job.state !== "running" && job.state !== "queued" && job.phase) phase = `Stopped in ${phase.toLowerCase()}`;
  return el(
    "tr",
    { "data-job-id": job.id, "data-state": job.state },
    el(
      "td",
      {},
      el("a", { href: `/jobs/${encodeURIComponent(job.id)}`, class: "job-link" }, job.id),
      el("div", { class: "muted small", "data-job-context": "" }, jobContext(job)),
    ),
    el("td", {}, stateBadge(job.state)),
    el("td", { class: phase === "–" ? "muted" : "" }, phase, epochLine(job)),
    el(
      "td",
      { class: "col-progress" },
      el(
        "div",
        { class: "progress-line" },
        progressBar(progress, job.state, `Progress of ${job.id}`),
        el("span", { class: "progress-pct" }, `${Math.round((progress || 0) * 100)} %`),
      ),
    ),
    el("td", { class: "nowrap" }, targetText(job.config && job.config.target)),
    achievedCell(job),
    accuracyCell(job),
    timeCell(job),
  );
}

function render(page) {
  body.setAttribute("aria-busy", "false");
  if (!page.data.length) {
    const state = currentState();
    const text = state ? `No ${state} jobs.` : "No jobs yet. Submit one with “New job”.";
    body.replaceChildren(el("tr", { class: "placeholder-row" }, el("td", { colspan: 8 }, text)));
  } else {
    body.replaceChildren(...page.data.map(row));
  }
  const shown = page.data.length;
  countLine.textContent = shown < page.count ? `Showing the newest ${shown} of ${page.count} jobs.` : `${page.count} job${page.count === 1 ? "" : "s"}.`;
}

async function loadModels() {
  try {
    const [modelPage, datasetPage] = await Promise.all([
      getJson("/v1/models?limit=500"),
      getJson("/v1/datasets?limit=500"),
    ]);
    models = new Map(modelPage.data.map((m) => [m.id, m]));
    datasets = new Map(datasetPage.data.map((d) => [d.id, d]));
  } catch {
    // Cosmetic only: rows fall back to the model and dataset ids.
  }
}

async function refresh() {
  clearTimeout(timer);
  const state = currentState();
  const query = new URLSearchParams({ limit: "100" });
  if (state) query.set("state", state);
  try {
    const page = await getJson(`/v1/jobs?${query}`);
    if (page.data.some((job) => !models.has(job.model_id) || !datasets.has(job.dataset_id))) await loadModels();
    render(page);
    showError(errorBox, "");
  } catch (err) {
    showError(errorBox, `Could not load jobs: ${err.message}`);
  }
  timer = setTimeout(refresh, document.hidden ? HIDDEN_REFRESH_MS : REFRESH_MS);
}

if (requireLogin()) {
  wireLogout();
  filter.value = currentState();
  filter.addEventListener("change", () => {
    const url = new URL(location.href);
    if (filter.value) url.searchParams.set("state", filter.value);
    else url.searchParams.delete("state");
    history.replaceState(null, "", url);
    body.setAttribute("aria-busy", "true");
    refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  followEvents("/v1/jobs/events", {
    onEvent: (kind) => {
      if (kind === "job") refreshSoon();
    },
  });
  refresh();
}
