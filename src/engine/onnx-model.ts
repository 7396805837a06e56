import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../model/config.js';
import { ONNX_FILES, serializeModelGraph, type GraphFile, type ModelFiles } from '../model/model-dir.js';
import type { Weights } from '../model/weights.js';
import type { VisualInput } from '../model/processor/image-processor.js';
import type { KvPool } from './kv-pool.js';
import { sessionHost, type ModelSession, type SessionHost } from './onnx-thread.js';
import { sessionOptions } from './session-options.js';

export interface OnnxModelOptions {
  /** Intra-op threads per session (default: all cores). */
  threads?: number;
  /** ONNX Runtime execution providers, e.g. ['cuda', 'cpu']. */
  executionProviders?: string[];
  /** Use the standard decoder even when the fast GQA variant exists (tests compare the two). */
  forceStandard?: boolean;
}

/** A sequence's KV cache in the standard layout: per layer [1, kvH, T, D] key and value tensors. */
export interface KvCache {
  keys: ort.Tensor[];
  values: ort.Tensor[];
  length: number;
}

/** Embedding tables up to this many floats are read once into memory and gathered in JS. */
const EMBED_TABLE_LIMIT = 32 * 1024 * 1024;

/** One call of the pooled decoder: `rows` rows of `s` tokens each over their slots' past. */
export interface PooledFeeds {
  rows: number;
  s: number;
  embeds: Float32Array;
  positions: BigInt64Array;
  pastLengths: number[];
  /** The KV pool, whose slots [first, first + rows) are the rows' past (read in place). */
  pool: KvPool;
  first: number;
  /** Index of each row's last real token (rows shorter than s are padded at the end); default s - 1. */
  lastIndex?: number[];
}

/** The pooled decoder's outputs: per layer the new keys/values [rows, kvH, s, D], and each row's logits [rows * V]. */
export interface PooledOutputs {
  logits: Float32Array;
  keys: Float32Array[];
  values: Float32Array[];
}

/**
 * The ONNX Runtime sessions of a model and single calls into them: the vision encoder, the
 * embedding, and the decoder (the fast pooled-KV variant when the model ships one, else the
 * standard transformers.js layout). Stateless between calls, so engines and tests can share one;
 * the KV cache belongs to the engine's ModelRunner.
 */
export class OnnxModel {
  private embedTable?: Float32Array;

  private decoderSession?: Promise<ModelSession>;

  private constructor(
    readonly config: ModelConfig,
    private readonly host: SessionHost,
    private readonly vision: ModelSession,
    private readonly embedder: ModelSession,
    private readonly openDecoder: () => Promise<ModelSession>,
    private readonly pooled: ModelSession | undefined,
  ) {}

  /**
   * The standard-layout decoder, opened on first use: with the pooled decoder it is never needed,
   * and a second session over the same weights would hold a second copy of them.
   */
  private get decoder(): Promise<ModelSession> {
    // A failed open is not kept: the next use tries again, and release() does not rethrow it.
    this.decoderSession ??= this.openDecoder().catch((e: unknown) => {
      this.decoderSession = undefined;
      throw e;
    });
    return this.decoderSession;
  }

  static async load(files: ModelFiles, opts: OnnxModelOptions = {}): Promise<OnnxModel> {
    const options = sessionOptions(opts);
    const hasPooled = !opts.forceStandard && existsSync(join(files.dir, ONNX_FILES.decoderKvPool));
    const host = sessionHost();
    return OnnxModel.open(files.config, host, (f) => host.open(join(files.dir, f), options), hasPooled);
  }

  /**
   * A model for other weights of the same architecture (an RL policy after a step, an ablation),
   * each graph serialized in memory when its session opens (the standard decoder never is, next to
   * the pooled one): no model directory is written and read back.
   */
  static async fromWeights(config: ModelConfig, weights: Weights, opts: OnnxModelOptions = {}): Promise<OnnxModel> {
    const options = sessionOptions(opts);
    const host = sessionHost();
    return OnnxModel.open(config, host, (f) => host.open(serializeModelGraph(config, weights, f), options), !opts.forceStandard);
  }

  private static async open(
    config: ModelConfig, host: SessionHost, open: (file: (typeof ONNX_FILES)[GraphFile]) => Promise<ModelSession>, pooled: boolean,
  ): Promise<OnnxModel> {
    const sessions = Promise.all([open(ONNX_FILES.vision), open(ONNX_FILES.embed), pooled ? open(ONNX_FILES.decoderKvPool) : undefined]);
    const [vision, embed, kvPool] = await sessions.catch(async (e: unknown) => {
      await host.close();
      throw e;
    });
    const model = new OnnxModel(config, host, vision, embed, () => open(ONNX_FILES.decoder), kvPool);
    if (!kvPool) await model.decoder;
    const { vocab_size: v, hidden_size: h } = config.text;
    if (v * h <= EMBED_TABLE_LIMIT) model.embedTable = await model.runEmbed(Array.from({ length: v }, (_, i) => i));
    return model;
  }

  /** True when the fast decoder (in-place KV pool, batched ragged decode) is available. */
  get fast(): boolean {
    return this.pooled !== undefined;
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

  /**
   * Encodes visual inputs; returns each one's features [tokens*hidden]. Several go in one run,
   * except with a per-input vision graph (imported checkpoints), which takes one at a time.
   */
  async encodeVisual(inputs: VisualInput[]): Promise<Float32Array[]> {
    if (inputs.length === 0) return [];
    if (this.config.vision.per_input_attention && inputs.length > 1) {
      const out: Float32Array[] = [];
      for (const input of inputs) out.push(...(await this.encodeVisual([input])));
      return out;
    }
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

  private async runEmbed(ids: number[]): Promise<Float32Array> {
    const out = await this.embedder.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) });
    return out.inputs_embeds!.data as Float32Array;
  }

  async embed(ids: number[]): Promise<Float32Array> {
    const table = this.embedTable;
    if (!table) return this.runEmbed(ids);
    const h = this.config.text.hidden_size;
    const out = new Float32Array(ids.length * h);
    ids.forEach((id, i) => out.set(table.subarray(id * h, (id + 1) * h), i * h));
    return out;
  }

  /** True when the pooled decoder takes rows of different lengths (padded, with `last_index`). */
  get raggedPrefill(): boolean {
    return this.pooled?.inputNames.includes('last_index') ?? false;
  }

  /** One call of the pooled decoder (the caller owns the pool and writes the new keys/values into it). */
  async runPooled(f: PooledFeeds): Promise<PooledOutputs> {
    const c = this.config.text;
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor('float32', f.embeds, [f.rows, f.s, c.hidden_size]),
      position_ids: new ort.Tensor('int64', f.positions, [3, f.rows, f.s]),
      past_lengths: new ort.Tensor('int64', BigInt64Array.from(f.pastLengths.map(BigInt)), [f.rows]),
    };
    if (this.raggedPrefill) {
      const last = f.lastIndex ?? new Array<number>(f.rows).fill(f.s - 1);
      feeds.last_index = new ort.Tensor('int64', BigInt64Array.from(last.map(BigInt)), [f.rows]);
    } else if (f.lastIndex?.some((i) => i !== f.s - 1)) throw new Error('this decoder graph has no last_index input (ragged rows)');
    f.pool.views(f.first, f.rows).forEach((v, i) => {
      feeds[`past_key_values.${i}.key`] = v.key;
      feeds[`past_key_values.${i}.value`] = v.value;
    });
    let out: Record<string, ort.Tensor>;
    try {
      const r = await this.pooled!.runLending(feeds, f.pool.buffers());
      f.pool.adopt(r.lent);
      out = r.outputs;
    } catch (e) {
      const lent = (e as { lent?: ArrayBuffer[] }).lent;
      if (lent) f.pool.adopt(lent);
      throw e;
    }
    const layers = Array.from({ length: c.num_hidden_layers }, (_, i) => i);
    return {
      logits: out.logits!.data as Float32Array,
      keys: layers.map((i) => out[`new_key.${i}`]!.data as Float32Array),
      values: layers.map((i) => out[`new_value.${i}`]!.data as Float32Array),
    };
  }

  /** Standard decoder for one sequence: returns the last position's logits and the grown cache. */
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
    const out = await (await this.decoder).run(feeds);
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
    const decoder = this.decoderSession ? await this.decoderSession.catch(() => undefined) : undefined;
    await Promise.all([this.vision.release(), this.embedder.release(), decoder?.release(), this.pooled?.release()]);
    await this.host.close();
  }
}
