import { DATA_TYPE, type Graph } from '../onnx/ir.js';

/** Small functional helpers over the IR so layer code reads like the model it describes. */
export const castFloat = (g: Graph, x: string) => g.op('Cast', [x], { to: { i: DATA_TYPE[g.floatType] } });
export const unsqueeze = (g: Graph, x: string, axes: number[]) => g.op('Unsqueeze', [x, g.int64(axes)]);
export const reshape = (g: Graph, x: string, shape: number[]) => g.op('Reshape', [x, g.int64(shape)]);
export const transpose = (g: Graph, x: string, perm: number[]) => g.op('Transpose', [x], { perm: { ints: perm } });

/** x @ W (+ b). Weights are stored [in, out]. */
export function linear(g: Graph, x: string, name: string, inDim: number, outDim: number, bias: boolean): string {
  const y = g.op('MatMul', [x, g.param(`${name}.weight`, [inDim, outDim])]);
  return bias ? g.op('Add', [y, g.param(`${name}.bias`, [outDim])]) : y;
}

export function rmsNorm(g: Graph, x: string, name: string, dim: number, eps: number): string {
  const meanSq = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: { ints: [-1] }, keepdims: { i: 1 } });
  const rms = g.op('Sqrt', [g.op('Add', [meanSq, g.scalarFloat(eps)])]);
  return g.op('Mul', [g.op('Div', [x, rms]), g.param(`${name}.weight`, [dim])]);
}

export const silu = (g: Graph, x: string) => g.op('Mul', [x, g.op('Sigmoid', [x])]);

/** Exact (erf) GELU, as torch.nn.GELU() in the Qwen2.5-VL patch merger. */
export function gelu(g: Graph, x: string): string {
  const erf = g.op('Erf', [g.op('Mul', [x, g.scalarFloat(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.scalarFloat(0.5)]), g.op('Add', [erf, g.scalarFloat(1)])]);
}

export function swiglu(g: Graph, x: string, name: string, dim: number, hidden: number, bias: boolean): string {
  const gate = silu(g, linear(g, x, `${name}.gate_proj`, dim, hidden, bias));
  const up = linear(g, x, `${name}.up_proj`, dim, hidden, bias);
  return linear(g, g.op('Mul', [gate, up]), `${name}.down_proj`, hidden, dim, bias);
}

/** rotate_half(x) = cat(-x2, x1) over the last axis. */
export function rotateHalf(g: Graph, x: string, headDim: number): string {
  const half = headDim / 2;
  const [x1, x2] = g.opN('Split', [x, g.int64([half, half])], 2, { axis: { i: -1 } });
  return g.op('Concat', [g.op('Neg', [x2!]), x1!], { axis: { i: -1 } });
}

export function applyRotary(g: Graph, x: string, cos: string, sin: string, headDim: number): string {
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotateHalf(g, x, headDim), sin])]);
}

/** Inverse frequencies 1 / theta^(2i/dim) for i < dim/2. */
export function inverseFrequencies(dim: number, theta: number): number[] {
  return Array.from({ length: dim / 2 }, (_, i) => 1 / Math.pow(theta, (2 * i) / dim));
}

/** Additive bias: 0 where allowed, a large negative where masked (finite, so fully masked rows stay NaN-free). */
export function maskToBias(g: Graph, allowed: string): string {
  return g.op('Where', [allowed, g.scalarFloat(0), g.scalarFloat(-1e9)]);
}
