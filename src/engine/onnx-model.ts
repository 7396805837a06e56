import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import pLimit from 'p-limit';
import type { ModelConfig, ProcessorConfig } from '../model/config.js';
import { ONNX_FILES, serializeModelGraph, type GraphFile, type ModelFiles } from '../model/model-dir.js';
import type { Weights } from '../model/weights.js';
import type { VisualInput } from '../model/processor/image-processor.js';
import { createRuntime, type Runtime } from './onnx-thread.js';
import type { PoolEmbedding, PooledCall, PooledResult, RuntimeCore, WireTensor } from './runtime-core.js';
import { sessionOptions } from './session-options.js';
import { ReusableBuffers } from '../util/reusable-buffers.js';
import { runPatchify } from '../model/processor/preprocess-pool.js';

export interface OnnxModelOptions {
  /** Intra-op threads per session (default: all cores). */
  threads?: number;
  /** ONNX Runtime execution providers, e.g. ['cuda', 'cpu']. */
  executionProviders?: string[];
  /** Use the standard decoder even when the fast GQA variant exists (tests compare the two). */
  forceStandard?: boolean;
  /**
   * Keep the embedding table in shared memory when it is small enough (default true); false embeds every token
   * through the embedding graph on the runtime, as models with a larger table do (tests).
   */
  embedTable?: boolean;
}

/** A sequence's KV cache in the standard layout: per layer [1, kvH, T, D] key and value tensors. */
export interface KvCache {
  keys: ort.Tensor[];
  values: ort.Tensor[];
  length: number;
}

/**
 * Vision-encoder calls patchified and posted ahead of the runtime's answers: two keep it busy. The
 * rest wait unpatchified: an engine posts a step's calls at once, and patchifying them all then would
 * block the event loop for the lot and hold each call's pixel values (8x its frames' bytes) in a buffer of its own.
 */
const VISION_CALLS_AHEAD = 2;

/** Embedding tables up to this many floats are read once into memory and gathered in JS. */
const EMBED_TABLE_LIMIT = 32 * 1024 * 1024;

/** A session on the model's runtime (the ONNX Runtime thread). */
class ModelSession {
  constructor(private readonly runtime: Runtime, readonly id: number, readonly inputNames: readonly string[]) {}

  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const wire = Object.fromEntries(Object.entries(feeds).map(([k, t]): [string, WireTensor] => [k, { type: t.type, data: t.data, dims: t.dims }]));
    const outputs = await this.runtime.call('run', [this.id, wire]);
    return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, new ort.Tensor(t.type, t.data as Float32Array, t.dims)]));
  }

  /**
   * Runs this (vision) session on visual inputs, patchified into a buffer of `buffers` off the
   * runtime's thread (runPatchify) and handed back by the runtime for reuse.
   */
  async runVision(processor: ProcessorConfig, inputs: VisualInput[], buffers: ReusableBuffers): Promise<Float32Array> {
    const pixels = await runPatchify(inputs, processor, buffers);
    const grid = BigInt64Array.from(inputs.flatMap((x) => x.grid.map(BigInt)));
    const answer = await this.runtime.call('runVision', [this.id, pixels, grid], [pixels.buffer as ArrayBuffer]);
    buffers.give(answer.pixels.buffer);
    return answer.features;
  }

  async release(): Promise<void> {
    await this.runtime.call('release', [this.id]);
  }
}

/**
 * An engine's KV pool, kept on the model's runtime next to the sessions that read it; this side
 * only names it. The decoder writes each call's new keys there (see runPooled).
 */
export class KvPoolHandle {
  private static nextId = 0;
  readonly id = KvPoolHandle.nextId++;
  private readonly created: Promise<void>;

  constructor(private readonly runtime: Runtime, text: ModelConfig['text'], slots: number, maxLen: number, embedding: PoolEmbedding) {
    this.created = runtime.call('createPool', [this.id, text, slots, maxLen, embedding]);
    this.created.catch(() => {}); // reported by the first use
  }

  /**
   * Posts a call on this pool at once, then reports the pool's creation failure first: the runtime runs calls in the
   * order posted, and callers rely on that order (a decode posted before a later restore or prefill of its slots).
   */
  private async post<M extends 'copySlot' | 'readSlot' | 'restoreBlocks' | 'saveBlocks' | 'runPooled'>(
    method: M, args: Parameters<RuntimeCore[M]>, transfer?: ArrayBuffer[],
  ): Promise<Awaited<ReturnType<RuntimeCore[M]>>> {
    const result = this.runtime.call(method, args, transfer);
    result.catch(() => {}); // observed below, after the creation
    await this.created;
    return result;
  }

  async copy(from: number, to: number, length: number): Promise<void> {
    await this.post('copySlot', [this.id, from, to, length]);
  }

  async read(slot: number, from: number, n: number): Promise<{ keys: Float32Array[]; values: Float32Array[] }> {
    return this.post('readSlot', [this.id, slot, from, n]);
  }

  /** Prefix-cache blocks kept next to the pool (see PrefixCache): written into a slot, or saved from one. */
  async restoreBlocks(slot: number, blocks: number[], tokens: number): Promise<void> {
    await this.post('restoreBlocks', [this.id, slot, blocks, tokens]);
  }

  async saveBlocks(slot: number, saves: { block: number; at: number }[], tokens: number, evicted: number[]): Promise<void> {
    await this.post('saveBlocks', [this.id, slot, saves, tokens, evicted]);
  }

  async run(call: Omit<PooledCall, 'pool'>): Promise<PooledResult> {
    return this.post('runPooled', [{ ...call, pool: this.id }], [call.embeds.buffer as ArrayBuffer, call.positions.buffer as ArrayBuffer]);
  }

  async release(): Promise<void> {
    await this.runtime.call('dropPool', [this.id]).catch(() => {});
  }
}

/**
 * The ONNX Runtime sessions of a model and single calls into them: the vision encoder, the
 * embedding, and the decoder (the fast pooled-KV variant when the model ships one, else the
 * standard transformers.js layout). The sessions run on the model's runtime (its own thread); engines
 * and tests can share one model, each engine with a KV pool of its own (createPool).
 */
export class OnnxModel {
  private embedTable?: Float32Array;
  /** The pixel values of vision-encoder calls, handed back by the runtime after each call (see ReusableBuffers). */
  private readonly pixelBuffers = new ReusableBuffers();
  private readonly visionCalls = pLimit(VISION_CALLS_AHEAD);

  private decoderSession?: Promise<ModelSession>;

  private constructor(
    readonly config: ModelConfig,
    private readonly runtime: Runtime,
    private readonly vision: ModelSession,
    private readonly embedder: ModelSession,
    private readonly openDecoder: () => Promise<ModelSession>,
    private readonly pooled: ModelSession | undefined,
  ) {
    this.takesLastIndex = pooled?.inputNames.includes('last_index') ?? false;
  }

  private readonly takesLastIndex: boolean;

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
    return OnnxModel.open(files.config, (runtime, f) => openSession(runtime, join(files.dir, f), options), hasPooled, opts.embedTable);
  }

  /**
   * A model for other weights of the same architecture (an RL policy after a step, an ablation),
   * each graph serialized in memory when its session opens (the standard decoder never is, next to
   * the pooled one): no model directory is written and read back.
   */
  static async fromWeights(config: ModelConfig, weights: Weights, opts: OnnxModelOptions = {}): Promise<OnnxModel> {
    const options = sessionOptions(opts);
    return OnnxModel.open(config, (runtime, f) => openSession(runtime, serializeModelGraph(config, weights, f), options), !opts.forceStandard, opts.embedTable);
  }

  private static async open(
    config: ModelConfig, openOn: (runtime: Runtime, file: (typeof ONNX_FILES)[GraphFile]) => Promise<ModelSession>, pooled: boolean,
    embedTable = true,
  ): Promise<OnnxModel> {
    const runtime = createRuntime();
    const open = (file: (typeof ONNX_FILES)[GraphFile]) => openOn(runtime, file);
    const sessions = Promise.all([open(ONNX_FILES.vision), open(ONNX_FILES.embed), pooled ? open(ONNX_FILES.decoderKvPool) : undefined]);
    const [vision, embed, kvPool] = await sessions.catch(async (e: unknown) => {
      await runtime.close();
      throw e;
    });
    const model = new OnnxModel(config, runtime, vision, embed, () => open(ONNX_FILES.decoder), kvPool);
    if (!kvPool) await model.decoder;
    const { vocab_size: v, hidden_size: h } = config.text;
    if (embedTable && v * h <= EMBED_TABLE_LIMIT) {
      // In shared memory: the runtime embeds a KV pool's chained decode rows from the same table, without a copy.
      const table = await model.runEmbed(Array.from({ length: v }, (_, i) => i));
      model.embedTable = new Float32Array(new SharedArrayBuffer(table.byteLength));
      model.embedTable.set(table);
    }
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

  /** Vision-encoder calls patchified and not yet answered (at most VISION_CALLS_AHEAD). */
  get visionCallsInFlight(): number {
    return this.visionCalls.activeCount;
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
    const features = await this.visionCalls(() => this.vision.runVision(this.config.processor, inputs, this.pixelBuffers));
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
    // A loop, not set(subarray): a view object per token was most of this function's time (~8k tokens a benchmark run).
    for (let i = 0; i < ids.length; i++) {
      const from = ids[i]! * h;
      const to = i * h;
      for (let j = 0; j < h; j++) out[to + j] = table[from + j]!;
    }
    return out;
  }

  /** True when the pooled decoder takes rows of different lengths (padded, with `last_index`). */
  get raggedPrefill(): boolean {
    return this.takesLastIndex;
  }

  /** A KV pool for an engine, on this model's runtime. */
  createPool(slots: number, maxLen: number): KvPoolHandle {
    if (!this.pooled) throw new Error('this model has no pooled decoder');
    return new KvPoolHandle(this.runtime, this.config.text, slots, maxLen, { session: this.embedder.id, table: this.embedTable });
  }

  /** One pooled-decoder call over a pool's slots: each row's logits [rows * V] (and greedy tokens when asked). */
  async runPooled(pool: KvPoolHandle, call: Omit<PooledCall, 'pool' | 'session'>): Promise<PooledResult> {
    return pool.run({ ...call, session: this.pooled!.id });
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
    await this.runtime.close();
  }
}

let nextSession = 0;

async function openSession(runtime: Runtime, source: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ModelSession> {
  const id = nextSession++;
  // Bytes (a graph serialized in memory) are handed over, not copied.
  const transfer = typeof source === 'string' ? [] : [source.buffer as ArrayBuffer];
  const { inputNames } = await runtime.call('open', [id, source, options], transfer);
  return new ModelSession(runtime, id, inputNames);
}
