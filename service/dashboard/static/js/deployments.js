// Deployments page: GET /v1/deployments (current version + history, newest first), rollback
// via POST /v1/deployments/{name}/rollback, and the fleet from GET /v1/devices (latest
// on-device benchmark per device). Refreshed in place.
import { ApiError, getJson, request, requireLogin, wireLogout } from "./api.js";
import { age, el, fixed, isNumber, localTime, parseTime, showError } from "./format.js";

const REFRESH_MS = 10_000;
// A device polls every few minutes; silent for longer than this is shown as offline.
const ONLINE_WINDOW_MS = 15 * 60 * 1000;

const $ = (id) => document.getElementById(id);
let deployments = [];
let timer = null;

function versionRow(deployment, version) {
  const current = version.version === deployment.current_version;
  const action = current
    ? el("span", { class: "badge", "data-state": "current" }, "current")
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
    { "data-version": version.version, class: current ? "is-current" : "" },
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
  );
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
  const deployment = deployments.find((d) => d.name === device.deployment);
  const seen = parseTime(device.last_seen_at);
  const online = seen && now - seen.getTime() < ONLINE_WINDOW_MS;
  let version = device.current_version ? `v${device.current_version}` : "–";
  let behind = false;
  if (deployment && device.current_version && deployment.current_version) {
    behind = device.current_version !== deployment.current_version;
    version += behind ? ` (deployment is at v${deployment.current_version})` : " (current)";
  }
  const failed = report.status && report.status !== "ok";
  const status = failed ? report.status : !seen ? "never seen" : online ? "online" : "offline";
  return el(
    "tr",
    { "data-device-id": device.id },
    el("td", {}, el("div", {}, device.name), el("div", { class: "muted small" }, device.id)),
    el("td", {}, device.deployment),
    el("td", { title: device.last_seen_at || "" }, seen ? age(device.last_seen_at, now) : "never"),
    el("td", { class: behind ? "warn-text" : "" }, version),
    el("td", { class: "num" }, latency(report, "p50_ms")),
    el("td", { class: "num" }, latency(report, "p95_ms")),
    el("td", { class: "num" }, isNumber(report.speedup) ? `${report.speedup.toFixed(2)}×` : "–"),
    el("td", { class: "num" }, isNumber(report.throughput_per_s) ? `${report.throughput_per_s.toFixed(1)}/s` : "–"),
    el("td", {}, el("span", { class: "badge", "data-state": failed ? "failed" : online ? "online" : "offline", title: report.error || "" }, status)),
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
