import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../model/config.js';
import { ONNX_FILES, type ModelFiles } from '../model/model-dir.js';
import type { VisualInput } from '../tools/image-processor.js';

export interface RunnerOptions {
  /** Intra-op threads per session (default: all cores). */
  threads?: number;
  /** ONNX Runtime execution providers, e.g. ['cuda', 'cpu']. */
  executionProviders?: string[];
}

/** A sequence's KV cache in the standard layout: per layer [1, kvH, T, D] key and value tensors. */
export interface KvCache {
  keys: ort.Tensor[];
  values: ort.Tensor[];
  length: number;
}

/** Owns the three ONNX Runtime sessions of a model directory and runs them. */
export class ModelRunner {
  private constructor(
    readonly config: ModelConfig,
    private readonly vision: ort.InferenceSession,
    private readonly embedder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
  ) {}

  static async load(files: ModelFiles, opts: RunnerOptions = {}): Promise<ModelRunner> {
    const options: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.threads ?? availableParallelism(),
      interOpNumThreads: 1,
      executionProviders: opts.executionProviders ?? ['cpu'],
      graphOptimizationLevel: 'all',
    };
    const open = (f: string) => ort.InferenceSession.create(join(files.dir, f), options);
    const [vision, embed, decoder] = await Promise.all([open(ONNX_FILES.vision), open(ONNX_FILES.embed), open(ONNX_FILES.decoder)]);
    return new ModelRunner(files.config, vision, embed, decoder);
  }

  emptyCache(): KvCache {
    const c = this.config.text;
    const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, c.num_key_value_heads, 0, c.head_dim]);
    return {
      keys: Array.from({ length: c.num_hidden_layers }, empty),
      values: Array.from({ length: c.num_hidden_layers }, empty),
      length: 0,
    };
  }

  /** Encodes several visual inputs in one vision-encoder run; returns each one's features [tokens*hidden]. */
  async encodeVisual(inputs: VisualInput[]): Promise<Float32Array[]> {
    if (inputs.length === 0) return [];
    const rowLen = inputs[0]!.pixelValues.length / (inputs[0]!.grid[0] * inputs[0]!.grid[1] * inputs[0]!.grid[2]);
    const total = inputs.reduce((a, x) => a + x.pixelValues.length, 0);
    const pixels = new Float32Array(total);
    let o = 0;
    for (const x of inputs) {
      pixels.set(x.pixelValues, o);
      o += x.pixelValues.length;
    }
    const grid = BigInt64Array.from(inputs.flatMap((x) => x.grid.map(BigInt)));
    const out = await this.vision.run({
      pixel_values: new ort.Tensor('float32', pixels, [total / rowLen, rowLen]),
      image_grid_thw: new ort.Tensor('int64', grid, [inputs.length, 3]),
    });
    const features = out.image_features!.data as Float32Array;
    const hidden = this.config.text.hidden_size;
    const result: Float32Array[] = [];
    let row = 0;
    for (const x of inputs) {
      result.push(features.subarray(row * hidden, (row + x.numTokens) * hidden));
      row += x.numTokens;
    }
    return result;
  }

  async embed(ids: number[]): Promise<Float32Array> {
    const out = await this.embedder.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) });
    return out.inputs_embeds!.data as Float32Array;
  }

  /**
   * One decoder pass for a single sequence: `embeds` [S*H] at `positions` [3*S] after the cached
   * tokens. Returns the last position's logits and the grown cache.
   */
  async forward(embeds: Float32Array, positions: BigInt64Array, cache: KvCache): Promise<{ logits: Float32Array; cache: KvCache }> {
    const c = this.config.text;
    const s = embeds.length / c.hidden_size;
    const total = cache.length + s;
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor('float32', embeds, [1, s, c.hidden_size]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      position_ids: new ort.Tensor('int64', positions, [3, 1, s]),
    };
    for (let i = 0; i < c.num_hidden_layers; i++) {
      feeds[`past_key_values.${i}.key`] = cache.keys[i]!;
      feeds[`past_key_values.${i}.value`] = cache.values[i]!;
    }
    const out = await this.decoder.run(feeds);
    const logits = out.logits!.data as Float32Array;
    const v = c.vocab_size;
    return {
      logits: logits.slice((s - 1) * v, s * v),
      cache: {
        keys: Array.from({ length: c.num_hidden_layers }, (_, i) => out[`present.${i}.key`]!),
        values: Array.from({ length: c.num_hidden_layers }, (_, i) => out[`present.${i}.value`]!),
        length: total,
      },
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.release(), this.embedder.release(), this.decoder.release()]);
  }
}
