// Deployments page: GET /v1/deployments (current version, staged rollout, history newest
// first), rollback via POST /v1/deployments/{name}/rollback, widening a stage via
// POST /v1/deployments/{name}/widen, each deployment's fleet summary from
// GET /v1/deployments/{name}/fleet (devices per version, online/stale, median on-device
// speedup and latency, failed installs), and the devices from GET /v1/devices (status and
// versions as the server computes them, latest benchmark). Refreshed in place.
import { ApiError, getJson, request, requireLogin, wireLogout } from "./api.js";
import { age, el, fixed, isNumber, localTime, parseTime, showError } from "./format.js";

const REFRESH_MS = 10_000;
const STATUS_TEXT = { online: "online", stale: "stale", never_seen: "never seen", revoked: "revoked" };

const $ = (id) => document.getElementById(id);
let deployments = [];
let timer = null;

function stageActions(deployment) {
  const { name, rollout } = deployment;
  const buttons = [];
  if (rollout.percent < 50) buttons.push(widenButton(name, 50));
  buttons.push(widenButton(name, 100));
  buttons.push(
    el(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        "data-end-stage": name,
        "aria-label": `End the staged rollout of ${name}: every device returns to version ${deployment.current_version}`,
        onclick: () => endStage(name, deployment.current_version),
      },
      "Roll back stage",
    ),
  );
  return el("span", { class: "stage-actions" }, buttons);
}

function widenButton(name, percent) {
  return el(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      "data-widen": `${name}:${percent}`,
      "aria-label": `Widen the staged rollout of ${name} to ${percent}% of its devices`,
      onclick: () => widen(name, percent),
    },
    percent === 100 ? "Widen to all" : `Widen to ${percent}%`,
  );
}

function versionRow(deployment, version) {
  const current = version.version === deployment.current_version;
  const staged = deployment.rollout && version.version === deployment.rollout.version;
  const action = current
    ? el("span", { class: "badge", "data-state": "current" }, "current")
    : staged
    ? el("span", {}, el("span", { class: "badge", "data-state": "staged" }, `staged ${deployment.rollout.percent}%`), " ", stageActions(deployment))
    : el(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          "data-rollback": `${deployment.name}:${version.version}`,
          "aria-label": `Roll ${deployment.name} back to version ${version.version}`,
          onclick: () => rollback(deployment.name, version.version),
        },
        version.version < deployment.current_version ? "Roll back" : "Re-activate",
      );
  return el(
    "tr",
    { "data-version": version.version, class: current ? "is-current" : staged ? "is-staged" : "" },
    el("td", { class: "num" }, `v${version.version}`),
    el("td", {}, el("a", { href: `/jobs/${encodeURIComponent(version.job_id)}` }, version.job_id)),
    el("td", { title: version.created_at }, localTime(version.created_at)),
    el("td", {}, action),
  );
}

function deploymentCard(deployment) {
  const title = `deployment-${deployment.name}`;
  return el(
    "section",
    { class: "card deployment", "data-deployment": deployment.name, "aria-labelledby": title },
    el(
      "div",
      { class: "deployment-head" },
      el("h3", { id: title }, deployment.name),
      el("span", { class: "version-pill" }, deployment.current_version ? `v${deployment.current_version}` : "no version"),
      deployment.rollout ? el("span", { class: "version-pill", "data-staged": deployment.rollout.version }, `v${deployment.rollout.version} to ${deployment.rollout.percent}%`) : null,
    ),
    el(
      "p",
      { class: "muted small" },
      deployment.current_job_id ? ["Serves ", el("a", { href: `/jobs/${encodeURIComponent(deployment.current_job_id)}` }, deployment.current_job_id), ` · updated ${age(deployment.updated_at)}`] : "Nothing published yet.",
    ),
    el(
      "table",
      { class: "table table-compact" },
      el("caption", { class: "visually-hidden" }, `Version history of ${deployment.name}`),
      el("thead", {}, el("tr", {}, ["Version", "Job", "Promoted", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, deployment.history.map((v) => versionRow(deployment, v))),
    ),
    el("div", { class: "fleet", "data-fleet": deployment.name }, el("p", { class: "muted small" }, "Loading the fleet…")),
  );
}

function fleetView(summary) {
  const counts = `${summary.devices} device${summary.devices === 1 ? "" : "s"}: ${summary.online} online, ${summary.stale} stale, ${summary.never_seen} never seen` + (summary.revoked ? ` (${summary.revoked} revoked)` : "");
  const rows = summary.versions.map((v) =>
    el(
      "tr",
      { "data-fleet-version": v.version },
      el("td", { class: "num" }, `v${v.version}`, v.role ? el("span", { class: "muted small" }, ` ${v.role}`) : null),
      el("td", { class: "num" }, String(v.assigned)),
      el("td", { class: "num", title: `${v.stale} stale; ${v.benchmarked} benchmarked` }, `${v.running} · ${v.online} online`),
      el(
        "td",
        { class: "num", title: isNumber(v.median_speedup_vs_fp32) ? `int8 over the fp32 pruned model: ${v.median_speedup_vs_fp32.toFixed(2)}×` : "" },
        isNumber(v.median_speedup) ? `${v.median_speedup.toFixed(2)}×` : "–",
        isNumber(v.median_speedup_vs_fp32) ? el("span", { class: "muted small", "data-int8-gain": v.version }, ` (int8 ${v.median_speedup_vs_fp32.toFixed(2)}×)`) : null,
      ),
      el("td", { class: "num" }, isNumber(v.median_latency_p50_ms) ? `${fixed(v.median_latency_p50_ms, 2)} ms` : "–"),
      el("td", { class: v.install_failures ? "num warn-text" : "num" }, String(v.install_failures)),
    ),
  );
  const failed = summary.failed_installs.map((f) =>
    el("li", { "data-failed-install": f.device_id }, `${f.name}: v${f.version} failed at ${f.stage}`, el("span", { class: "muted small" }, ` — ${f.error || ""}`)),
  );
  return [
    el("p", { class: "small", "data-fleet-counts": "" }, counts),
    rows.length
      ? el(
          "table",
          { class: "table table-compact" },
          el("caption", { class: "visually-hidden" }, `Devices per version of ${summary.deployment}: assigned by the stage, running it, median on-device speedup and p50 latency, failed installs`),
          el("thead", {}, el("tr", {}, ["Version", "Assigned", "Running", "Speedup", "p50", "Failed"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, rows),
        )
      : null,
    failed.length ? el("div", {}, el("p", { class: "small warn-text" }, "Failed installs"), el("ul", { class: "small failed-installs" }, failed)) : null,
  ];
}

async function loadFleet(name) {
  const box = document.querySelector(`[data-fleet="${CSS.escape(name)}"]`);
  if (!box) return;
  try {
    const summary = await getJson(`/v1/deployments/${encodeURIComponent(name)}/fleet`);
    box.replaceChildren(...fleetView(summary).filter(Boolean));
  } catch (err) {
    box.replaceChildren(el("p", { class: "muted small" }, `Could not load the fleet: ${err.message}`));
  }
}

async function widen(name, percent) {
  const who = percent === 100 ? "every device" : `${percent}% of the devices`;
  if (!window.confirm(`Give the staged version of ${name} to ${who}? Devices switch on their next poll.`)) return;
  try {
    await request(`/v1/deployments/${encodeURIComponent(name)}/widen`, { method: "POST", json: { percent } });
    showError($("deployments-error"), "");
  } catch (err) {
    showError($("deployments-error"), `Widening failed: ${err.message}`);
  }
  refresh();
}

async function endStage(name, version) {
  if (!window.confirm(`End the staged rollout of ${name}? Every device returns to version ${version} on its next poll.`)) return;
  try {
    await request(`/v1/deployments/${encodeURIComponent(name)}/rollback`, { method: "POST" });
    showError($("deployments-error"), "");
  } catch (err) {
    showError($("deployments-error"), `Rollback failed: ${err.message}`);
  }
  refresh();
}

async function rollback(name, version) {
  if (!window.confirm(`Point ${name} at version ${version}? Devices switch on their next poll.`)) return;
  try {
    await request(`/v1/deployments/${encodeURIComponent(name)}/rollback`, { method: "POST", json: { version } });
    showError($("deployments-error"), "");
  } catch (err) {
    showError($("deployments-error"), `Rollback failed: ${err.message}`);
  }
  refresh();
}

function latency(report, key) {
  const value = report && report.latency && report.latency[key];
  return isNumber(value) ? `${fixed(value, 2)} ms` : "–";
}

function deviceRow(device, now) {
  const report = device.last_report || {};
  const seen = parseTime(device.last_seen_at);
  let version = device.current_version ? `v${device.current_version}` : "–";
  const behind = device.assigned_version && device.current_version !== device.assigned_version;
  if (device.assigned_version) version += behind ? ` (assigned v${device.assigned_version})` : " (assigned)";
  const failure = device.install_failure;
  const status = failure ? `install of v${failure.version} failed (${failure.stage})` : STATUS_TEXT[device.status] || device.status;
  const state = failure ? "failed" : device.status === "online" ? "online" : "offline";
  return el(
    "tr",
    { "data-device-id": device.id, "data-status": device.status },
    el("td", {}, el("div", {}, device.name), el("div", { class: "muted small" }, device.id)),
    el("td", {}, device.deployment),
    el("td", { title: device.last_seen_at || "" }, seen ? age(device.last_seen_at, now) : "never"),
    el("td", { class: behind ? "warn-text" : "" }, version),
    el("td", { class: "num" }, latency(report, "p50_ms")),
    el("td", { class: "num" }, latency(report, "p95_ms")),
    el("td", { class: "num" }, isNumber(report.speedup) ? `${report.speedup.toFixed(2)}×` : "–"),
    el("td", { class: "num" }, isNumber(report.throughput_per_s) ? `${report.throughput_per_s.toFixed(1)}/s` : "–"),
    el("td", {}, el("span", { class: "badge badge-plain", "data-state": state, title: failure ? failure.error || "" : "" }, status)),
  );
}

async function loadDevices() {
  const body = $("devices-body");
  try {
    const page = await getJson("/v1/devices?limit=1000");
    const now = Date.now();
    $("devices-note").textContent = page.count ? `${page.count} device${page.count === 1 ? "" : "s"}; latest on-device benchmark of each.` : "";
    body.replaceChildren(...(page.data.length ? page.data.map((d) => deviceRow(d, now)) : [el("tr", { class: "placeholder-row" }, el("td", { colspan: 9 }, "No devices registered yet."))]));
  } catch (err) {
    const text = err instanceof ApiError && err.status === 404 ? "This server does not report devices yet." : `Could not load devices: ${err.message}`;
    body.replaceChildren(el("tr", { class: "placeholder-row" }, el("td", { colspan: 9 }, text)));
  }
}

async function refresh() {
  clearTimeout(timer);
  const box = $("deployments");
  try {
    const page = await getJson("/v1/deployments?limit=500");
    deployments = page.data;
    box.replaceChildren(...(deployments.length ? deployments.map(deploymentCard) : [el("p", { class: "muted" }, "No deployments yet. Promote a succeeded job from its page.")]));
    box.setAttribute("aria-busy", "false");
    await Promise.all(deployments.map((d) => loadFleet(d.name)));
  } catch (err) {
    showError($("deployments-error"), `Could not load deployments: ${err.message}`);
  }
  await loadDevices();
  timer = setTimeout(refresh, REFRESH_MS);
}

if (requireLogin()) {
  wireLogout();
  refresh();
}
