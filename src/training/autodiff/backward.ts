import type { Graph } from '../../model/onnx/ir.js';
import { inferRanks } from './ranks.js';
import { NON_DIFFERENTIABLE, RULES } from './rules.js';

/**
 * Reverse-mode differentiation over the IR: appends to `g` the nodes computing d(loss)/d(wrt[i])
 * for a scalar `loss` value, and returns the gradient value names in the order of `wrt`.
 * Only nodes on a path from some `wrt` value to the loss are differentiated; a `wrt` value the
 * loss does not depend on gets an explicit zero gradient.
 */
export function appendBackward(g: Graph, loss: string, wrt: string[]): string[] {
  const ranks = inferRanks(g);
  const forwardNodes = g.nodes.slice();
  // Values that depend on a wrt value through differentiable ops.
  const dependent = new Set(wrt);
  for (const n of forwardNodes) {
    if (NON_DIFFERENTIABLE.has(n.op)) continue;
    if (n.inputs.some((i) => dependent.has(i))) for (const o of n.outputs) dependent.add(o);
  }
  if (!dependent.has(loss)) throw new Error('loss does not depend on any parameter');
  // Values the loss depends on.
  const relevant = new Set([loss]);
  for (let k = forwardNodes.length - 1; k >= 0; k--) {
    const n = forwardNodes[k]!;
    if (n.outputs.some((o) => relevant.has(o))) for (const i of n.inputs) relevant.add(i);
  }
  const contributions = new Map<string, string[]>();
  const add = (value: string, grad: string) => {
    const list = contributions.get(value);
    if (list) list.push(grad);
    else contributions.set(value, [grad]);
  };
  /** The summed gradient of a value (a Sum node when several uses contributed). */
  const gradOf = (value: string): string | undefined => {
    const list = contributions.get(value);
    if (!list || list.length === 0) return undefined;
    if (list.length > 1) contributions.set(value, [g.op('Sum', list, {}, 'grad_sum')]);
    return contributions.get(value)![0];
  };
  add(loss, g.op('ConstantOfShape', [g.op('Shape', [loss])], {
    value: { t: { dtype: g.floatType, dims: [1], data: g.floatType === 'float64' ? Float64Array.of(1) : Float32Array.of(1) } },
  }, 'grad_seed'));
  const ctx = {
    g,
    rank: (v: string) => {
      const r = ranks.get(v);
      if (r === undefined || r < 0) throw new Error(`rank of ${v} unknown`);
      return r;
    },
  };
  for (let k = forwardNodes.length - 1; k >= 0; k--) {
    const n = forwardNodes[k]!;
    if (NON_DIFFERENTIABLE.has(n.op)) continue;
    const needs = n.inputs.map((i) => dependent.has(i) && relevant.has(i));
    if (!needs.some(Boolean)) continue;
    const dOut = n.outputs.map(gradOf);
    if (dOut.every((d) => d === undefined)) continue;
    const rule = RULES[n.op];
    if (!rule) throw new Error(`no gradient rule for ${n.op}`);
    rule(ctx, n, dOut, needs).forEach((d, i) => {
      if (d && needs[i]) add(n.inputs[i]!, d);
    });
  }
  return wrt.map((w) => gradOf(w) ?? g.op('ConstantOfShape', [g.op('Shape', [w])], {
    value: { t: { dtype: g.floatType, dims: [1], data: g.floatType === 'float64' ? new Float64Array(1) : new Float32Array(1) } },
  }));
}
