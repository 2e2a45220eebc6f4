// Training curves: loss, accuracy and the active structure's cost per epoch. The x axis is
// the epochs themselves (S1 S2 … W1 W2 …, never a fraction of one) with the two training
// phases named above them and a divider where structure learning hands over.
import { COLORS, formatCompact, formatPercent, lineChart, lineDataset, setData } from "./charts.js";
import { fixed, isNumber, reduction } from "./format.js";
import { epochLabel, epochTitle, phaseSpans } from "./job-labels.js";
import { $, baselineCost, costMetric, epochRows, state } from "./job-page.js";

const COST_TITLES = { flops: "FLOPs (MACs)", params: "parameters" };
const charts = {};
let rows = [];

function ensureCharts() {
  if (charts.loss || !window.Chart) return;
  const common = { phases: true, tooltipTitle: (index) => (rows[index] ? epochTitle(rows[index]) : "") };
  charts.loss = lineChart($("chart-loss"), { ...common, yTitle: "loss", yFormat: (v) => fixed(v, 3) });
  charts.accuracy = lineChart($("chart-accuracy"), { ...common, yTitle: "accuracy", yFormat: formatPercent, yMin: 0, yMax: 1 });
  charts.flops = lineChart($("chart-flops"), { ...common, yTitle: COST_TITLES.flops, yFormat: formatCompact, yMin: 0 });
}

export function renderCurves() {
  ensureCharts();
  rows = epochRows();
  $("curves-empty").hidden = rows.length > 0;
  $("curves-grid").hidden = rows.length === 0;
  if (!charts.loss) return;
  const labels = rows.map(epochLabel);
  const spans = phaseSpans(rows);
  for (const chart of Object.values(charts)) chart.$phases = spans;
  const col = (key) => rows.map((r) => (isNumber(r[key]) ? r[key] : null));
  setData(charts.loss, labels, [
    lineDataset("train", col("train_loss"), COLORS.slate, { dashed: true }),
    lineDataset("test", col("loss"), COLORS.blue),
  ]);
  setData(charts.accuracy, labels, [
    lineDataset("train", col("train_accuracy"), COLORS.slate, { dashed: true }),
    lineDataset("test", col("accuracy"), COLORS.teal),
  ]);
  setData(charts.flops, labels, costDatasets(col));
}

function costDatasets(col) {
  const metric = costMetric();
  const title = COST_TITLES[metric];
  const caption = $("chart-flops").closest("figure").querySelector("figcaption");
  caption.textContent = `${metric === "params" ? "Parameters" : title} of the active structure`;
  charts.flops.options.scales.y.title.text = title;
  const datasets = [{ ...lineDataset(title, col(metric), COLORS.blue, { fill: true }), order: 1 }];
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
  return datasets;
}
