import type { Graph, OpNode } from '../../model/onnx/ir.js';

/**
 * Static rank of every value in a graph. Gradient rules need ranks (to transpose the last two axes
 * of a batched MatMul, to know which leading axes broadcasting added); shapes stay dynamic.
 */
export function inferRanks(g: Graph): Map<string, number> {
  const rank = new Map<string, number>();
  for (const v of g.inputs) rank.set(v.name, v.shape.length);
  for (const [name, p] of g.params) rank.set(name, p.dims.length);
  for (const [name, t] of g.constants) rank.set(name, t.dims.length);
  for (const n of g.nodes) {
    const r = nodeOutputRank(g, n, rank);
    for (const out of n.outputs) rank.set(out, r);
  }
  return rank;
}

/** Values of a constant int64 tensor (shape, axes inputs). */
export function constInts(g: Graph, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  const t = g.constants.get(name);
  if (!t || t.dtype !== 'int64') return undefined;
  return Array.from(t.data as BigInt64Array, Number);
}

const attrInt = (n: OpNode, key: string, fallback: number) => {
  const a = n.attrs[key];
  return a && 'i' in a ? a.i : fallback;
};
const attrInts = (n: OpNode, key: string) => {
  const a = n.attrs[key];
  return a && 'ints' in a ? a.ints : undefined;
};

function nodeOutputRank(g: Graph, n: OpNode, rank: Map<string, number>): number {
  const r = (i: number) => {
    const v = rank.get(n.inputs[i]!);
    if (v === undefined) throw new Error(`rank of ${n.inputs[i]} (input ${i} of ${n.op}) unknown`);
    return v;
  };
  const maxRank = () => Math.max(...n.inputs.filter(Boolean).map((_, i) => r(i)));
  switch (n.op) {
    case 'Shape': case 'Range': case 'NonZero': return n.op === 'NonZero' ? 2 : 1;
    case 'Size': return 0;
    case 'Reshape': {
      const shape = constInts(g, n.inputs[1]);
      return shape ? shape.length : -1; // dynamic target shapes only occur in generated backward nodes
    }
    case 'Flatten': return 2;
    case 'Transpose': return attrInts(n, 'perm')?.length ?? r(0);
    case 'Unsqueeze': return r(0) + (constInts(g, n.inputs[1])?.length ?? 1);
    case 'Squeeze': return r(0) - (constInts(g, n.inputs[1])?.length ?? 1);
    case 'ReduceSum': case 'ReduceMean': case 'ReduceMax': case 'ReduceMin': case 'ReduceProd': {
      if (attrInt(n, 'keepdims', 1) === 1) return r(0);
      const axes = n.op === 'ReduceSum' ? constInts(g, n.inputs[1]) : attrInts(n, 'axes');
      return axes ? r(0) - axes.length : 0;
    }
    case 'Gather': return r(0) + r(1) - 1;
    case 'GatherElements': return r(1);
    case 'MatMul': return Math.max(r(0), r(1));
    case 'Expand': return Math.max(r(0), constInts(g, n.inputs[1])?.length ?? rank.get(n.inputs[1]!) ?? r(0));
    case 'ConstantOfShape': return -1;
    default: return maxRank(); // elementwise, Softmax, Concat, Split, Slice, Cast, Where...
  }
}
