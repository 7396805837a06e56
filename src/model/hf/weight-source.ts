import type { ModelConfig } from '../config.js';
import { CheckpointError, readTensor, type StoredTensor } from './checkpoint-tensors.js';
import { transpose } from '../../util/matrix.js';

/**
 * Where each parameter of our graphs comes from in a Hugging Face Qwen2.5-VL checkpoint. Our graphs
 * use the checkpoint's own (legacy) names; what differs is the layout:
 * - every Linear is stored [out, in] (PyTorch) and our MatMuls take [in, out];
 * - the patch embedding is a Conv3d [hidden, C, tp, p, p] whose stride equals its kernel, so it is a
 *   Linear over the flattened patch [hidden, C*tp*p*p];
 * - `lm_head.weight` is the embedding matrix itself when `tie_word_embeddings` (Qwen2.5-VL-3B).
 */
export class WeightSource {
  constructor(private readonly tensors: Map<string, StoredTensor>, private readonly config: ModelConfig) {}

  private stored(name: string): StoredTensor {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(`${name}: missing from the checkpoint (no shard holds it)`);
    return t;
  }

  /** The checkpoint tensor behind one of our parameters. */
  sourceName(param: string): string {
    return param === 'lm_head.weight' && this.config.text.tie_word_embeddings ? 'model.embed_tokens.weight' : param;
  }

  private checkShape(t: StoredTensor, expected: number[]): void {
    const got = t.shape.reduce((a, b) => a * b, 1);
    const want = expected.reduce((a, b) => a * b, 1);
    const leading = t.shape[0] === expected[0];
    if (got !== want || !leading) {
      throw new CheckpointError(`${t.name}: shape [${t.shape}] in ${t.file.split('/').pop()}, expected [${expected}] for this config.json`);
    }
  }

  /**
   * A Linear's weight as stored, [out, in] row-major (MatMulNBits' layout), checked against the
   * [in, out] dims our graph declares for `param`.
   */
  async outIn(param: string, dims: [number, number]): Promise<Float32Array> {
    const t = this.stored(this.sourceName(param));
    this.checkShape(t, [dims[1], dims[0]]);
    return readTensor(t);
  }

  /** A parameter in our graph's layout: Linear weights transposed to [in, out], the rest as stored. */
  async ours(param: string, dims: number[]): Promise<Float32Array> {
    if (dims.length === 2 && param !== 'model.embed_tokens.weight') {
      const [k, n] = dims as [number, number];
      return transpose(await this.outIn(param, [k, n]), n, k);
    }
    const t = this.stored(this.sourceName(param));
    this.checkShape(t, dims);
    return readTensor(t);
  }
}
