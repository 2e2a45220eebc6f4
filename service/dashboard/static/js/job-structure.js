// The learned structure: channels per unit before and after (from the report; until then the
// latest allocation), the allocation after every structure-learning epoch, and a table of
// the units. Units are named by role ("conv 3 · 16×16") over their module path.
import { barChart, COLORS, lineChart, lineDataset, ramp, setData } from "./charts.js";
import { el, percent } from "./format.js";
import { unitRoles, unitTicks } from "./job-labels.js";
import { $, root, state } from "./job-page.js";

const charts = {};
let ticks = []; // [role, module path] per unit, as the charts show them now
const EPOCH_MARKERS = ["circle", "triangle", "rect", "rectRot", "star", "crossRot", "rectRounded", "cross"];

function ensureCharts() {
  if (charts.channels || !window.Chart) return;
  const tooltipTitle = (index) => (ticks[index] ? `${ticks[index][0]} (${ticks[index][1]})` : "");
  charts.channels = barChart($("chart-channels"), { yTitle: "channels", tooltipTitle });
  charts.allocation = lineChart($("chart-allocation"), { yTitle: "active channels", yInteger: true, tooltipTitle });
  charts.allocation.options.scales.x.title.text = "unit";
  charts.allocation.options.scales.x.ticks = { autoSkip: false, maxRotation: 60 };
}

export function renderStructure() {
  ensureCharts();
  const units = state.report && Array.isArray(state.report.units) ? state.report.units : null;
  const epochs = [...state.allocations.keys()].sort((a, b) => a - b);
  $("structure-empty").hidden = Boolean(units) || epochs.length > 0;
  $("structure-grid").hidden = !units && epochs.length === 0;
  root.dataset.allocationEpochs = String(epochs.length);
  renderUnitTable(units);
  if (!charts.channels) return;

  const names = units ? units.map((u) => u.name) : Object.keys(state.allocations.get(epochs[0]) || {});
  ticks = unitTicks(names, units);
  const caption = $("chart-channels").closest("figure").querySelector("figcaption");
  if (units) {
    caption.textContent = "Channels per unit: before vs after";
    setData(charts.channels, ticks, [
      { label: "before", data: units.map((u) => u.channels_before), backgroundColor: COLORS.before, borderRadius: 2 },
      { label: "after", data: units.map((u) => u.channels_after), backgroundColor: COLORS.after, borderRadius: 2 },
    ]);
    root.dataset.channelUnits = String(units.length);
  } else if (epochs.length) {
    // Until the report names the original widths, show where the allocation stands now.
    const latest = epochs[epochs.length - 1];
    caption.textContent = `Active channels per unit after S${latest} (before pruning)`;
    setData(charts.channels, ticks, [
      { label: `active after S${latest}`, data: names.map((n) => state.allocations.get(latest)[n] ?? null), backgroundColor: COLORS.after, borderRadius: 2 },
    ]);
  }
  setData(charts.allocation, ticks, allocationDatasets(names, units, epochs));
}

// One colour and one marker per epoch; the allocation kept after the target fit is solid,
// what redistribution proposed is dashed, so the fit's changes show as gaps between them.
function allocationDatasets(names, units, epochs) {
  const colors = ramp(epochs.length);
  const datasets = [];
  epochs.forEach((epoch, i) => {
    const marker = EPOCH_MARKERS[i % EPOCH_MARKERS.length];
    const series = (label, widths, dashed) => ({
      ...lineDataset(label, names.map((n) => widths[n] ?? null), colors[i], { dashed, points: epochs.length <= 12 }),
      pointStyle: marker,
      tension: 0,
    });
    datasets.push(series(`after S${epoch}`, state.allocations.get(epoch), false));
    const proposed = state.proposals.get(epoch);
    if (proposed) datasets.push(series(`proposed in S${epoch}`, proposed, true));
  });
  if (units) {
    datasets.unshift(lineDataset("capacity", units.map((u) => u.channels_before), COLORS.before, { dashed: true, points: false }));
  }
  return datasets;
}

function renderUnitTable(units) {
  const wrap = $("units-wrap");
  wrap.hidden = !units || units.length === 0;
  if (wrap.hidden) return;
  const roles = unitRoles(
    units.map((u) => u.name),
    units,
  );
  $("units-body").replaceChildren(
    ...units.map((u, i) =>
      el(
        "tr",
        { "data-unit": u.name },
        el("th", { scope: "row" }, roles[i]),
        el("td", {}, el("code", {}, u.name)),
        el("td", { class: "num" }, String(u.channels_before)),
        el("td", { class: "num" }, String(u.channels_after)),
        el("td", { class: "num" }, u.channels_before ? percent(u.channels_after / u.channels_before, 0) : "–"),
      ),
    ),
  );
}
