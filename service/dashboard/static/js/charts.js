// Thin wrappers over the vendored Chart.js (window.Chart, loaded from /static/vendor) so the
// pages share one look: no animation (live updates should not wobble), readable fonts.
import { compact } from "./format.js";

const Chart = window.Chart;

export const COLORS = {
  blue: "#2563eb",
  blueSoft: "rgba(37, 99, 235, 0.12)",
  teal: "#0f766e",
  slate: "#64748b",
  grid: "#e5e7eb",
  before: "#cbd5e1",
  after: "#1d4ed8",
  target: "#b45309",
};

if (Chart) {
  Chart.defaults.font.family =
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#475569";
  Chart.defaults.borderColor = COLORS.grid;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 10;
  Chart.defaults.plugins.legend.labels.boxHeight = 7;
  Chart.defaults.plugins.legend.labels.pointStyleWidth = 16;
}

function axis(title, format) {
  return {
    title: { display: Boolean(title), text: title },
    ticks: format ? { callback: (value) => format(value) } : {},
    grid: { color: COLORS.grid },
  };
}

const PHASE_BAND = 16; // px above the plot where the phase names go, clear of the data

/**
 * Draws the training phases over a chart whose x labels are epochs: a dashed divider where
 * one phase ends and the next begins, and each phase's name above its epochs (its letter
 * alone when the name does not fit). The page sets `chart.$phases` to
 * [{name, short, from, to}] (label indices); charts without it are left alone.
 */
const phaseDivider = {
  id: "phaseDivider",
  afterDatasetsDraw(chart) {
    const spans = chart.$phases;
    if (!Array.isArray(spans) || !spans.length) return;
    const { ctx, chartArea, scales } = chart;
    const x = (index) => scales.x.getPixelForValue(index);
    ctx.save();
    ctx.font = `11px ${Chart.defaults.font.family}`;
    ctx.fillStyle = COLORS.slate;
    ctx.strokeStyle = "#94a3b8";
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 3]);
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    const drawn = [];
    spans.forEach((span, i) => {
      const left = i === 0 ? chartArea.left : (x(span.from - 1) + x(span.from)) / 2;
      const right = i === spans.length - 1 ? chartArea.right : (x(span.to) + x(span.to + 1)) / 2;
      if (i > 0) {
        ctx.beginPath();
        ctx.moveTo(left, chartArea.top - PHASE_BAND);
        ctx.lineTo(left, chartArea.bottom);
        ctx.stroke();
      }
      const text = [span.name, span.short].find((t) => ctx.measureText(t).width <= right - left - 6);
      if (text) ctx.fillText(text, (left + right) / 2, chartArea.top - 3);
      drawn.push(text || "");
    });
    ctx.restore();
    chart.$phasesDrawn = drawn; // what fitted, for the browser tests
  },
};

/** Tooltip callbacks whose title is tooltipTitle(label index), when one is given. */
function titleCallbacks(tooltipTitle) {
  return tooltipTitle ? { title: (items) => (items.length ? tooltipTitle(items[0].dataIndex) : "") } : {};
}

/** A line chart over epochs; datasets: [{label, data, color, dashed}]. */
export function lineChart(canvas, { yTitle, yFormat, yMin, yMax, yInteger, phases, tooltipTitle } = {}) {
  const y = axis(yTitle, yFormat);
  if (yMin !== undefined) y.min = yMin;
  if (yMax !== undefined) y.max = yMax;
  if (yInteger) y.ticks.precision = 0;
  const callbacks = titleCallbacks(tooltipTitle);
  if (yFormat) callbacks.label = (ctx) => `${ctx.dataset.label}: ${yFormat(ctx.parsed.y)}`;
  return new Chart(canvas, {
    type: "line",
    data: { labels: [], datasets: [] },
    plugins: phases ? [phaseDivider] : [],
    options: {
      interaction: { mode: "index", intersect: false },
      layout: phases ? { padding: { top: PHASE_BAND } } : {},
      plugins: {
        // Legend in dataset order (not drawing order), with line samples for dashed lines.
        legend: { position: "bottom", labels: { usePointStyle: true, sort: (a, b) => a.datasetIndex - b.datasetIndex } },
        tooltip: { callbacks },
      },
      scales: { x: axis("epoch"), y },
    },
  });
}

export function lineDataset(label, data, color, { dashed = false, fill = false, points = true } = {}) {
  return {
    label,
    data,
    borderColor: color,
    backgroundColor: fill ? COLORS.blueSoft : color,
    borderWidth: 2,
    borderDash: dashed ? [6, 4] : [],
    pointRadius: points ? 3 : 0,
    pointStyle: points ? "circle" : "line",
    pointHoverRadius: points ? 5 : 0,
    fill,
    spanGaps: true,
    tension: 0.15,
  };
}

/** Bars per unit, side by side per label; whole numbers on the value axis. */
export function barChart(canvas, { yTitle, tooltipTitle } = {}) {
  return new Chart(canvas, {
    type: "bar",
    data: { labels: [], datasets: [] },
    options: {
      plugins: { legend: { position: "bottom" }, tooltip: { callbacks: titleCallbacks(tooltipTitle) } },
      scales: {
        x: { ...axis(), ticks: { autoSkip: false, maxRotation: 60, minRotation: 0 } },
        y: { ...axis(yTitle), beginAtZero: true, ticks: { precision: 0 } },
      },
      datasets: { bar: { grouped: true, categoryPercentage: 0.8, barPercentage: 0.9 } },
    },
  });
}

export function setData(chart, labels, datasets) {
  chart.data.labels = labels;
  chart.data.datasets = datasets;
  chart.update("none");
}

/** n colours from light to dark blue: older redistributions fade, the latest stands out. */
export function ramp(n) {
  const light = [191, 219, 254];
  const dark = [30, 64, 175];
  return Array.from({ length: n }, (_, i) => {
    const t = n === 1 ? 1 : i / (n - 1);
    const c = light.map((l, k) => Math.round(l + (dark[k] - l) * t));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  });
}

export const formatCompact = (value) => compact(value, 3);
export const formatPercent = (value) => `${Math.round(value * 1000) / 10} %`;
