import type { ConstTensor } from './onnx/ir.js';
import type { Graph } from './onnx/ir.js';
import { Rng } from '../util/random.js';
import type { TextConfig } from './config.js';
import { transpose } from '../util/matrix.js';

/** Named fp32 parameters shared by every graph of a model (and by training). */
export type Weights = Map<string, { dims: number[]; data: Float32Array }>;

/**
 * Weights by name for export. A tied model's `lm_head.weight` is the transposed embedding: training
 * keeps only the embedding (one tensor), and the serving graphs' head is derived when exported.
 */
export function weightLookup(weights: Weights, text?: TextConfig) {
  return (name: string): ConstTensor => {
    const w = weights.get(name) ?? (name === 'lm_head.weight' && text?.tie_word_embeddings ? tiedHead(weights, text) : undefined);
    if (!w) throw new Error(`missing weight ${name}`);
    return { dtype: 'float32', dims: w.dims, data: w.data };
  };
}

function tiedHead(weights: Weights, c: TextConfig): { dims: number[]; data: Float32Array } | undefined {
  const embedding = weights.get('model.embed_tokens.weight');
  return embedding && { dims: [c.hidden_size, c.vocab_size], data: transpose(embedding.data, c.vocab_size, c.hidden_size) };
}

/** A tied model's weights as training keeps them: the embedding alone (the head is derived from it on export). */
export function untieHeadCopy(text: TextConfig, weights: Weights): Weights {
  if (text.tie_word_embeddings) weights.delete('lm_head.weight');
  return weights;
}

/**
 * Random initialisation by parameter role: norms 1, biases 0, embeddings N(0,1),
 * matrices N(0, 1/fan_in). Params are visited in sorted order so a seed gives the same bytes.
 */
export function initWeights(graphs: Graph[], seed: number): Weights {
  const specs = new Map<string, number[]>();
  for (const g of graphs) for (const [name, p] of g.params) specs.set(name, p.dims);
  const rng = new Rng(seed);
  const weights: Weights = new Map();
  for (const name of [...specs.keys()].sort()) {
    const dims = specs.get(name)!;
    const size = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (/(norm|ln_q)\.weight$/.test(name)) data.fill(1);
    else if (name.endsWith('.bias')) data.fill(0);
    else {
      const std = name.includes('embed_tokens') ? 1 : 1 / Math.sqrt(dims[0]!);
      for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
    }
    weights.set(name, { dims, data });
  }
  return weights;
}
