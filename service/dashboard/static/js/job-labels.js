// How the job page names epochs, training phases and units. Pure functions of the data the
// API sends (no DOM), so the charts, the table and the tests agree on one wording.
import { PHASE_LABELS } from "./format.js";

// Epochs restart at 1 in each training phase; a letter says which phase an epoch is in.
const PHASE_LETTERS = { structure_learning: "S", weight_learning: "W" };

/** {phase: "structure_learning", epoch: 2} -> "S2" */
export function epochLabel(row) {
  return `${PHASE_LETTERS[row.phase] || "?"}${row.epoch}`;
}

/** "S2" as a reader says it: "Structure learning, epoch 2" */
export function epochTitle(row) {
  return `${PHASE_LABELS[row.phase] || row.phase}, epoch ${row.epoch}`;
}

/**
 * Consecutive rows of one phase as a span of label indices, for the divider and the phase
 * names drawn over the curves: [{name: "structure learning", short: "S", from: 0, to: 1}, ...].
 */
export function phaseSpans(rows) {
  const spans = [];
  rows.forEach((row, index) => {
    const last = spans[spans.length - 1];
    if (last && last.phase === row.phase) {
      last.to = index;
      return;
    }
    const name = (PHASE_LABELS[row.phase] || row.phase).toLowerCase();
    spans.push({ phase: row.phase, name, short: PHASE_LETTERS[row.phase] || name, from: index, to: index });
  });
  return spans;
}

/**
 * A role per unit name: the report's own (e.g. "conv 3 · 16×16": the unit's place among the
 * units and the feature map its conv writes) or, for a running job and for reports written
 * before roles existed, the unit's place alone ("unit 3").
 */
export function unitRoles(names, units) {
  const byName = new Map((Array.isArray(units) ? units : []).map((u) => [u.name, u]));
  return names.map((name, index) => {
    const role = byName.get(name) && byName.get(name).role;
    return typeof role === "string" && role ? role : `unit ${index + 1}`;
  });
}

/** A unit's tick on the structure charts: its role over its module path (two lines). */
export function unitTicks(names, units) {
  const roles = unitRoles(names, units);
  return names.map((name, index) => [roles[index], name]);
}
