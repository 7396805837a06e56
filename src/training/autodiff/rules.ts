import type { Graph, OpNode } from '../../model/onnx/ir.js';
import { constInts } from './ranks.js';

/** What a gradient rule may use: the graph to append to, and static ranks of forward values. */
export interface RuleContext {
  g: Graph;
  rank(value: string): number;
}

/**
 * A gradient rule: given a node and the gradients of its outputs (undefined where no gradient
 * flows), returns the gradient of each input (undefined where the input needs none).
 */
export type GradientRule = (c: RuleContext, n: OpNode, dOut: (string | undefined)[], needs: boolean[]) => (string | undefined)[];

const attr = (n: OpNode, key: string) => n.attrs[key];
const attrInt = (n: OpNode, key: string, fallback: number) => {
  const a = attr(n, key);
  return a && 'i' in a ? a.i : fallback;
};
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/**
 * Sums a broadcast gradient back to the shape of `x`: leading axes broadcasting added are summed
 * away statically, then every axis where x has size 1 and the gradient does not is summed with
 * keepdims (found at run time, since shapes are dynamic; an empty axis list is a no-op).
 */
export function sumToShape(c: RuleContext, grad: string, x: string, gradRank: number): string {
  const { g } = c;
  const xRank = c.rank(x);
  let d = grad;
  if (gradRank > xRank) {
    d = g.op('ReduceSum', [d, g.int64(Array.from({ length: gradRank - xRank }, (_, i) => i))], { keepdims: { i: 0 } });
  }
  if (xRank === 0) return d;
  const one = g.scalarInt64(1);
  const xIsOne = g.op('Equal', [g.op('Shape', [x]), one]);
  const dIsNotOne = g.op('Not', [g.op('Equal', [g.op('Shape', [d]), one])]);
  const axes = g.op('Reshape', [g.op('NonZero', [g.op('And', [xIsOne, dIsNotOne])]), g.int64([-1])]);
  return g.op('ReduceSum', [d, axes], { keepdims: { i: 1 }, noop_with_empty_axes: { i: 1 } });
}

/** Swaps the last two axes of a value of known rank. */
function swapLast(g: Graph, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return g.op('Transpose', [x], { perm: { ints: perm } });
}

const zerosLike = (g: Graph, x: string) =>
  g.op('ConstantOfShape', [g.op('Shape', [x])], {
    value: { t: { dtype: g.floatType, dims: [1], data: g.floatType === 'float64' ? new Float64Array(1) : new Float32Array(1) } },
  });

const unary = (f: (c: RuleContext, n: OpNode, d: string) => string): GradientRule => (c, n, [d], needs) => [needs[0] && d ? f(c, n, d) : undefined];

export const RULES: Record<string, GradientRule> = {
  Identity: unary((_c, _n, d) => d),
  Cast: unary((_c, _n, d) => d), // float to float only: integer casts never carry gradients
  Neg: unary((c, _n, d) => c.g.op('Neg', [d])),
  Sqrt: unary((c, n, d) => c.g.op('Div', [c.g.op('Mul', [d, c.g.scalarFloat(0.5)]), n.outputs[0]!])),
  Exp: unary((c, n, d) => c.g.op('Mul', [d, n.outputs[0]!])),
  Log: unary((c, n, d) => c.g.op('Div', [d, n.inputs[0]!])),
  Sin: unary((c, n, d) => c.g.op('Mul', [d, c.g.op('Cos', [n.inputs[0]!])])),
  Cos: unary((c, n, d) => c.g.op('Neg', [c.g.op('Mul', [d, c.g.op('Sin', [n.inputs[0]!])])])),
  // d erf(x)/dx = 2/sqrt(pi) * exp(-x^2)
  Erf: unary((c, n, d) => {
    const x = n.inputs[0]!;
    const slope = c.g.op('Mul', [c.g.op('Exp', [c.g.op('Neg', [c.g.op('Mul', [x, x])])]), c.g.scalarFloat(2 / Math.sqrt(Math.PI))]);
    return c.g.op('Mul', [d, slope]);
  }),
  Sigmoid: unary((c, n, d) => {
    const y = n.outputs[0]!;
    return c.g.op('Mul', [d, c.g.op('Mul', [y, c.g.op('Sub', [c.g.scalarFloat(1), y])])]);
  }),
  Reshape: unary((c, n, d) => c.g.op('Reshape', [d, c.g.op('Shape', [n.inputs[0]!])])),
  Flatten: unary((c, n, d) => c.g.op('Reshape', [d, c.g.op('Shape', [n.inputs[0]!])])),
  Unsqueeze: unary((c, n, d) => c.g.op('Reshape', [d, c.g.op('Shape', [n.inputs[0]!])])),
  Squeeze: unary((c, n, d) => c.g.op('Reshape', [d, c.g.op('Shape', [n.inputs[0]!])])),
  Transpose: unary((c, n, d) => {
    const a = attr(n, 'perm');
    const perm = a && 'ints' in a ? a.ints : Array.from({ length: c.rank(n.inputs[0]!) }, (_, i) => c.rank(n.inputs[0]!) - 1 - i);
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => (inverse[p] = i));
    return c.g.op('Transpose', [d], { perm: { ints: inverse } });
  }),
  Softmax: unary((c, n, d) => {
    const y = n.outputs[0]!;
    const axis = attrInt(n, 'axis', -1);
    const dot = c.g.op('ReduceSum', [c.g.op('Mul', [d, y]), c.g.int64([axis])], { keepdims: { i: 1 } });
    return c.g.op('Mul', [y, c.g.op('Sub', [d, dot])]);
  }),
  LogSoftmax: unary((c, n, d) => {
    const axis = attrInt(n, 'axis', -1);
    const sum = c.g.op('ReduceSum', [d, c.g.int64([axis])], { keepdims: { i: 1 } });
    return c.g.op('Sub', [d, c.g.op('Mul', [c.g.op('Exp', [n.outputs[0]!]), sum])]);
  }),
  ReduceSum: unary((c, n, d) => {
    const x = n.inputs[0]!;
    const axes = constInts(c.g, n.inputs[1]);
    let dd = d;
    if (attrInt(n, 'keepdims', 1) === 0) {
      const all = axes ?? Array.from({ length: c.rank(x) }, (_, i) => i);
      if (all.length > 0) dd = c.g.op('Unsqueeze', [d, c.g.int64(all.map((a) => norm(a, c.rank(x))))]);
    }
    return c.g.op('Expand', [dd, c.g.op('Shape', [x])]);
  }),
  ReduceMean: unary((c, n, d) => {
    const x = n.inputs[0]!;
    const a = attr(n, 'axes');
    const axes = a && 'ints' in a ? a.ints : Array.from({ length: c.rank(x) }, (_, i) => i);
    const dd = attrInt(n, 'keepdims', 1) === 0 ? c.g.op('Unsqueeze', [d, c.g.int64(axes.map((v) => norm(v, c.rank(x))))]) : d;
    const toFloat = (v: string) => c.g.op('Cast', [v], { to: { i: c.g.floatType === 'float64' ? 11 : 1 } });
    const count = c.g.op('Div', [toFloat(c.g.op('Size', [x])), toFloat(c.g.op('Size', [n.outputs[0]!]))]);
    return c.g.op('Div', [c.g.op('Expand', [dd, c.g.op('Shape', [x])]), count]);
  }),
  Add: (c, n, [d], needs) => {
    const r = c.rank(n.outputs[0]!);
    return [needs[0] && d ? sumToShape(c, d, n.inputs[0]!, r) : undefined, needs[1] && d ? sumToShape(c, d, n.inputs[1]!, r) : undefined];
  },
  Sub: (c, n, [d], needs) => {
    const r = c.rank(n.outputs[0]!);
    return [needs[0] && d ? sumToShape(c, d, n.inputs[0]!, r) : undefined, needs[1] && d ? c.g.op('Neg', [sumToShape(c, d, n.inputs[1]!, r)]) : undefined];
  },
  Mul: (c, n, [d], needs) => {
    const r = c.rank(n.outputs[0]!);
    const [a, b] = n.inputs as [string, string];
    return [
      needs[0] && d ? sumToShape(c, c.g.op('Mul', [d, b]), a, r) : undefined,
      needs[1] && d ? sumToShape(c, c.g.op('Mul', [d, a]), b, r) : undefined,
    ];
  },
  Div: (c, n, [d], needs) => {
    const r = c.rank(n.outputs[0]!);
    const [a, b] = n.inputs as [string, string];
    return [
      needs[0] && d ? sumToShape(c, c.g.op('Div', [d, b]), a, r) : undefined,
      needs[1] && d ? sumToShape(c, c.g.op('Neg', [c.g.op('Div', [c.g.op('Mul', [d, n.outputs[0]!]), b])]), b, r) : undefined,
    ];
  },
  Where: (c, n, [d], needs) => {
    const r = c.rank(n.outputs[0]!);
    const [cond, a, b] = n.inputs as [string, string, string];
    const zero = c.g.scalarFloat(0);
    return [
      undefined,
      needs[1] && d ? sumToShape(c, c.g.op('Where', [cond, d, zero]), a, r) : undefined,
      needs[2] && d ? sumToShape(c, c.g.op('Where', [cond, zero, d]), b, r) : undefined,
    ];
  },
  MatMul: (c, n, [d], needs) => {
    if (!d) return [undefined, undefined];
    const { g } = c;
    const [a, b] = n.inputs as [string, string];
    const ra = c.rank(a);
    const rb = c.rank(b);
    const r = c.rank(n.outputs[0]!);
    if (ra < 2 || rb < 2) throw new Error('MatMul gradient: 1-D operands are not supported');
    let da: string | undefined;
    let db: string | undefined;
    if (needs[0]) da = sumToShape(c, g.op('MatMul', [d, swapLast(g, b, rb)]), a, r);
    if (needs[1]) {
      // A weight matrix applied to a batch: fold the batch into rows, one [K,M]x[M,N] product.
      db = rb === 2
        ? g.op('MatMul', [g.op('Transpose', [g.op('Flatten', [a], { axis: { i: ra - 1 } })], { perm: { ints: [1, 0] } }), g.op('Flatten', [d], { axis: { i: r - 1 } })])
        : sumToShape(c, g.op('MatMul', [swapLast(g, a, ra), d]), b, r);
    }
    return [da, db];
  },
  Concat: (c, n, [d], needs) => {
    if (!d) return n.inputs.map(() => undefined);
    const axis = norm(attrInt(n, 'axis', 0), c.rank(n.outputs[0]!));
    const sizes = c.g.op('Concat', n.inputs.map((x) => c.g.op('Shape', [x], { start: { i: axis }, end: { i: axis + 1 } })), { axis: { i: 0 } });
    const parts = c.g.opN('Split', [d, sizes], n.inputs.length, { axis: { i: axis } });
    return parts.map((p, i) => (needs[i] ? p : undefined));
  },
  Split: (c, n, dOut, needs) => {
    if (!needs[0] || dOut.every((d) => !d)) return [undefined];
    const axis = attrInt(n, 'axis', 0);
    const parts = dOut.map((d, i) => d ?? zerosLike(c.g, n.outputs[i]!));
    return [c.g.op('Concat', parts, { axis: { i: axis } })];
  },
  Gather: (c, n, [d], needs) => {
    if (!needs[0] || !d) return [undefined];
    if (attrInt(n, 'axis', 0) !== 0) throw new Error('Gather gradient: only axis 0');
    const [data, idx] = n.inputs as [string, string];
    const indices = c.g.op('Unsqueeze', [idx, c.g.int64([-1])]);
    return [c.g.op('ScatterND', [zerosLike(c.g, data), indices, d], { reduction: { s: 'add' } }), undefined];
  },
  GatherElements: (c, n, [d], needs) => {
    if (!needs[0] || !d) return [undefined, undefined];
    const [data, idx] = n.inputs as [string, string];
    return [c.g.op('ScatterElements', [zerosLike(c.g, data), idx, d], { axis: { i: attrInt(n, 'axis', 0) }, reduction: { s: 'add' } }), undefined];
  },
};

/** Ops whose outputs never carry a gradient (integer or boolean results, shapes). */
export const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'Range', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Not', 'NonZero', 'ConstantOfShape',
]);
