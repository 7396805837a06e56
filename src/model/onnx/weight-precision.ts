import type { Graph, OpNode } from './ir.js';

/**
 * Weight precision of a converted checkpoint. Activations stay fp32 on every path; only how the
 * MatMul weights (and the embedding table) are stored changes:
 * - fp32: as the graphs are built;
 * - fp16: half-precision initializers cast to fp32 in the graph (half the disk; ONNX Runtime folds
 *   the cast at load, so memory is fp32's, except the embedding, which is gathered then cast);
 * - q8 / q4: `com.microsoft.MatMulNBits`, blocks of 32 along K with an fp32 scale and a zero
 *   point each (asymmetric, the range widened to include 0 so zero stays exact).
 */
export const WEIGHT_DTYPES = ['fp32', 'fp16', 'q8', 'q4'] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

export const QUANT_BLOCK = 32;

/** onnxruntime's constant-folding limit on one output (constant_folding.cc). */
const ORT_FOLD_LIMIT_BYTES = 1 << 30;

/** A MatMul weight replaced by MatMulNBits (its parts are named `<weight>.qweight`, `.scales`, `.qzeros`). */
export interface QuantizedWeight {
  bits: 4 | 8;
  /** Rows N (output features) and K (input features). */
  n: number;
  k: number;
}

const suffix = { q: '.qweight', scales: '.scales', zeros: '.qzeros' } as const;

export function quantizedPartOf(param: string): { source: string; part: keyof typeof suffix } | undefined {
  for (const [part, s] of Object.entries(suffix) as [keyof typeof suffix, string][]) {
    if (param.endsWith(s)) return { source: param.slice(0, -s.length), part };
  }
  return undefined;
}

const blocksOf = (k: number) => Math.ceil(k / QUANT_BLOCK);

/**
 * Rewrites `g` in place for a weight precision: each MatMul whose right operand is a 2-D parameter
 * (accepted by `quantize`) becomes MatMulNBits (q4/q8) or reads an fp16 copy through a Cast (fp16);
 * an embedding Gather reads an fp16 table and casts its rows (every precision below fp32).
 * Returns the weights it quantized, by their float name.
 */
export function applyWeightPrecision(g: Graph, dtype: WeightDtype, quantize: (param: string) => boolean = () => true): Map<string, QuantizedWeight> {
  const quantized = new Map<string, QuantizedWeight>();
  if (dtype === 'fp32') return quantized;
  const bits = dtype === 'q4' ? 4 : 8;
  const replaced: OpNode[] = [];
  for (const node of g.nodes) {
    const w = node.inputs[1];
    const spec = w === undefined ? undefined : g.params.get(w);
    if (node.op === 'Gather' && node.inputs[0] && g.params.has(node.inputs[0])) {
      const table = g.params.get(node.inputs[0])!;
      table.dtype = 'float16';
      const out = node.outputs[0]!;
      const half = g.fresh('gather_f16');
      node.outputs[0] = half;
      replaced.push({ op: 'Cast', domain: '', inputs: [half], outputs: [out], attrs: { to: { i: 1 } } });
      continue;
    }
    if (node.op !== 'MatMul' || !spec || spec.dims.length !== 2 || !quantize(spec.name)) continue;
    const [k, n] = spec.dims as [number, number];
    if (dtype === 'fp16') {
      // ONNX Runtime folds a Cast of an initializer only up to 1 GiB of output; a larger one would be
      // cast again on every run (the LM head of a 3B: 1.2 GB per token), so it stays fp32.
      if (k * n * 4 > ORT_FOLD_LIMIT_BYTES) continue;
      spec.dtype = 'float16';
      const cast = g.fresh('weight_f32');
      replaced.push({ op: 'Cast', domain: '', inputs: [spec.name], outputs: [cast], attrs: { to: { i: 1 } } });
      node.inputs[1] = cast;
      continue;
    }
    g.params.delete(spec.name);
    quantized.set(spec.name, { bits, n, k });
    const blocks = blocksOf(k);
    const q = g.param(spec.name + suffix.q, [n, blocks, (QUANT_BLOCK * bits) / 8], 'uint8');
    const scales = g.param(spec.name + suffix.scales, [n * blocks]);
    const zeros = g.param(spec.name + suffix.zeros, [n * Math.ceil((blocks * bits) / 8)], 'uint8');
    node.op = 'MatMulNBits';
    node.domain = 'com.microsoft';
    node.inputs = [node.inputs[0]!, q, scales, zeros];
    // accuracy_level 4: A is quantized to int8 per block and multiplied in integers (MLAS's fast path).
    node.attrs = { K: { i: k }, N: { i: n }, bits: { i: bits }, block_size: { i: QUANT_BLOCK }, accuracy_level: { i: 4 } };
  }
  // Casts go first: their inputs are initializers, and the graph must stay topologically sorted.
  g.nodes.unshift(...replaced.filter((r) => r.inputs[0] !== undefined && g.params.has(r.inputs[0])));
  for (const r of replaced.filter((x) => !(x.inputs[0] !== undefined && g.params.has(x.inputs[0])))) {
    const at = g.nodes.findIndex((node) => node.outputs.includes(r.inputs[0]!));
    g.nodes.splice(at + 1, 0, r);
  }
  return quantized;
}

/**
 * Quantizes a weight stored [N, K] row-major (PyTorch's [out, in], MatMulNBits' B layout) into
 * MatMulNBits' parts: q [N, blocks, blob] (4-bit: two values a byte, the even one in the low
 * nibble), scales [N * blocks], zero points packed the same way (a byte each for 8 bits).
 */
export function quantizeBlockwise(w: Float32Array, n: number, k: number, bits: 4 | 8): { q: Uint8Array; scales: Float32Array; zeros: Uint8Array } {
  const blocks = blocksOf(k);
  const levels = (1 << bits) - 1;
  const blob = (QUANT_BLOCK * bits) / 8;
  const zeroBytes = Math.ceil((blocks * bits) / 8);
  const q = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const zeros = new Uint8Array(n * zeroBytes);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const start = row * k + b * QUANT_BLOCK;
      const end = row * k + Math.min(k, (b + 1) * QUANT_BLOCK);
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        lo = Math.min(lo, w[i]!);
        hi = Math.max(hi, w[i]!);
      }
      const scale = Math.fround((hi - lo) / levels);
      const zp = scale === 0 ? 1 << (bits - 1) : Math.min(levels, Math.max(0, Math.round(-lo / scale)));
      scales[row * blocks + b] = scale;
      if (bits === 4) zeros[row * zeroBytes + (b >> 1)]! |= zp << ((b & 1) * 4);
      else zeros[row * zeroBytes + b] = zp;
      const base = (row * blocks + b) * blob;
      for (let j = 0; j < QUANT_BLOCK; j++) {
        const i = start + j;
        const v = i < end ? (scale === 0 ? zp : Math.min(levels, Math.max(0, Math.round(w[i]! / scale) + zp))) : zp;
        if (bits === 4) q[base + (j >> 1)]! |= v << ((j & 1) * 4);
        else q[base + j] = v;
      }
    }
  }
  return { q, scales, zeros };
}
