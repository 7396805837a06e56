import * as ort from 'onnxruntime-node';
import type { TextConfig } from '../model/config.js';
import { KvPool } from './kv-pool.js';
import { argmax } from './sampler.js';

/** A tensor as it crosses between threads. */
export interface WireTensor {
  type: ort.Tensor.Type;
  data: ort.Tensor.DataType;
  dims: readonly number[];
}

/** One pooled-decoder call: `rows` rows of `s` tokens over pool slots [first, first + rows), and where the new keys go. */
export interface PooledCall {
  session: number;
  pool: number;
  rows: number;
  s: number;
  first: number;
  embeds: Float32Array;
  positions: BigInt64Array;
  pastLengths: number[];
  /** Index of each row's last real token (rows padded at the end), when the graph takes it. */
  lastIndex?: number[];
  /** Row `row`'s first `n` new positions are written into `slot` from position `at`. */
  writes: { row: number; slot: number; at: number; n: number }[];
  /** Keep each written row's greedy token (the argmax of its logits) for the slot's next call, and return them. */
  greedy?: boolean;
  /**
   * Decode rows embedded here: with `token`, that token; without, the slot's greedy token from its previous call
   * (a chained row). Their `embeds` rows are ignored. The caller then posts a decode with no round trip before it,
   * so it reads the sequences' lengths and reaches the runtime before any later call on their slots.
   */
  tokens?: { row: number; token?: number }[];
}

/** A pooled-decoder call's logits [rows * V], and with `greedy` each row's argmax. */
export interface PooledResult {
  logits: Float32Array;
  greedy?: Int32Array;
}

/** How a pool's chained rows are embedded: the embedding session, or its whole table when the model keeps one (shared memory). */
export interface PoolEmbedding {
  session: number;
  table?: Float32Array;
}

/** A KV pool with what its chained rows need: the embedding, and each slot's last greedy token. */
interface PoolState {
  kv: KvPool;
  embedding?: PoolEmbedding;
  greedy: Int32Array;
}

/**
 * What runs where the sessions are: the ONNX Runtime sessions of a model and the KV pools its
 * engines decode over. The pools never leave this place: a decoder call takes embeddings and
 * positions in and gives logits back, and the new keys/values are written here.
 */
export class RuntimeCore {
  private readonly sessions = new Map<number, ort.InferenceSession>();
  private readonly pools = new Map<number, PoolState>();
  /** Each pool's prefix-cache blocks (per layer [kvH, tokens, D] keys and values), by block id. */
  private readonly prefixBlocks = new Map<number, Map<number, { keys: Float32Array[]; values: Float32Array[] }>>();
  /** Pooled decoders that read logits at `last_index` (graph version 4 on). */
  private readonly takesLastIndex = new Set<number>();

  async open(session: number, source: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<{ inputNames: readonly string[] }> {
    const s = typeof source === 'string' ? await ort.InferenceSession.create(source, options) : await ort.InferenceSession.create(source, options);
    this.sessions.set(session, s);
    if (s.inputNames.includes('last_index')) this.takesLastIndex.add(session);
    return { inputNames: s.inputNames };
  }

  async run(session: number, feeds: Record<string, WireTensor>): Promise<Record<string, WireTensor>> {
    const inputs = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data as Float32Array, t.dims)]));
    const out = await this.sessionOf(session).run(inputs);
    return Object.fromEntries(Object.entries(out).map(([k, t]): [string, WireTensor] => [k, { type: t.type, data: t.data, dims: t.dims }]));
  }

  /** Runs a vision encoder on pixel values ([patches, patch row], per input grid t, h, w), and hands them back for reuse. */
  async runVision(session: number, pixels: Float32Array, grid: BigInt64Array): Promise<{ features: Float32Array; pixels: Float32Array }> {
    let patches = 0;
    for (let i = 0; i < grid.length; i += 3) patches += Number(grid[i]! * grid[i + 1]! * grid[i + 2]!);
    const out = await this.sessionOf(session).run({
      pixel_values: new ort.Tensor('float32', pixels, [patches, pixels.length / patches]),
      image_grid_thw: new ort.Tensor('int64', grid, [grid.length / 3, 3]),
    });
    return { features: out.image_features!.data as Float32Array, pixels };
  }

  async release(session: number): Promise<void> {
    await this.sessions.get(session)?.release();
    this.sessions.delete(session);
    this.takesLastIndex.delete(session);
  }

  createPool(pool: number, text: TextConfig, slots: number, maxLen: number, embedding?: PoolEmbedding): void {
    this.pools.set(pool, { kv: new KvPool(text, slots, maxLen), embedding, greedy: new Int32Array(slots).fill(-1) });
  }

  dropPool(pool: number): void {
    this.pools.delete(pool);
    this.prefixBlocks.delete(pool);
  }

  async runPooled(c: PooledCall): Promise<PooledResult> {
    const state = this.stateOf(c.pool);
    const pool = state.kv;
    const text = pool.text;
    if (c.tokens?.length) await this.embedRows(state, c, c.tokens);
    pool.ensureCapacity(Math.max(...c.writes.map((w) => w.at + w.n), ...c.pastLengths.map((p) => p + 1)));
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor('float32', c.embeds, [c.rows, c.s, text.hidden_size]),
      position_ids: new ort.Tensor('int64', c.positions, [3, c.rows, c.s]),
      past_lengths: new ort.Tensor('int64', BigInt64Array.from(c.pastLengths.map(BigInt)), [c.rows]),
    };
    const session = this.sessionOf(c.session);
    if (this.takesLastIndex.has(c.session)) {
      const last = c.lastIndex ?? new Array<number>(c.rows).fill(c.s - 1);
      feeds.last_index = new ort.Tensor('int64', BigInt64Array.from(last.map(BigInt)), [c.rows]);
    } else if (c.lastIndex?.some((i) => i !== c.s - 1)) throw new Error('this decoder graph has no last_index input (ragged rows)');
    pool.views(c.first, c.rows).forEach((v, i) => {
      feeds[`past_key_values.${i}.key`] = v.key;
      feeds[`past_key_values.${i}.value`] = v.value;
    });
    const out = await session.run(feeds);
    const layers = Array.from({ length: text.num_hidden_layers }, (_, i) => i);
    const keys = layers.map((i) => out[`new_key.${i}`]!.data as Float32Array);
    const values = layers.map((i) => out[`new_value.${i}`]!.data as Float32Array);
    for (const w of c.writes) pool.write(w.slot, w.at, keys, values, w.row, c.s, w.n);
    const logits = out.logits!.data as Float32Array;
    if (!c.greedy) return { logits };
    const v = logits.length / c.rows;
    const greedy = new Int32Array(c.rows).fill(-1);
    for (const w of c.writes) state.greedy[w.slot] = greedy[w.row] = argmax(logits.subarray(w.row * v, (w.row + 1) * v));
    return { logits, greedy };
  }

  /** Fills the embeddings of a decode call's rows: known tokens, or their slots' last greedy tokens (chained rows). */
  private async embedRows(state: PoolState, c: PooledCall, rows: { row: number; token?: number }[]): Promise<void> {
    const h = state.kv.text.hidden_size;
    if (!state.embedding) throw new Error('this KV pool was created without an embedding for its decode rows');
    if (c.s !== 1) throw new Error('rows embedded on the runtime are decode rows (one token each)');
    const tokens = rows.map(({ row, token }) => {
      const id = token ?? state.greedy[c.first + row]!;
      if (id < 0) throw new Error(`slot ${c.first + row} has no greedy token to chain from`);
      return id;
    });
    const { session, table } = state.embedding;
    const ids = table ? undefined : new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, tokens.length]);
    const embeds = ids && ((await this.sessionOf(session).run({ input_ids: ids })).inputs_embeds!.data as Float32Array);
    rows.forEach(({ row }, i) => {
      const from = table ? table.subarray(tokens[i]! * h, (tokens[i]! + 1) * h) : embeds!.subarray(i * h, (i + 1) * h);
      c.embeds.set(from, row * h);
    });
  }

  copySlot(pool: number, from: number, to: number, length: number): void {
    this.poolOf(pool).copy(from, to, length);
  }

  readSlot(pool: number, slot: number, from: number, n: number): { keys: Float32Array[]; values: Float32Array[] } {
    return this.poolOf(pool).read(slot, from, n);
  }

  /** Writes prefix-cache blocks, in order, into a slot from position 0 (`tokens` positions each). */
  restoreBlocks(pool: number, slot: number, blocks: number[], tokens: number): void {
    const p = this.poolOf(pool);
    const store = this.blocksOf(pool);
    p.ensureCapacity(blocks.length * tokens);
    blocks.forEach((id, i) => {
      const kv = store.get(id);
      if (!kv) throw new Error(`no prefix-cache block ${id}`);
      p.write(slot, i * tokens, kv.keys, kv.values, 0, tokens, tokens);
    });
  }

  /** Keeps copies of a slot's positions [at, at + tokens) as prefix-cache blocks, and drops evicted blocks. */
  saveBlocks(pool: number, slot: number, saves: { block: number; at: number }[], tokens: number, evicted: number[]): void {
    const p = this.poolOf(pool);
    const store = this.blocksOf(pool);
    for (const id of evicted) store.delete(id);
    for (const { block, at } of saves) store.set(block, p.read(slot, at, tokens));
  }

  private sessionOf(id: number): ort.InferenceSession {
    const s = this.sessions.get(id);
    if (!s) throw new Error(`no session ${id}`);
    return s;
  }

  private blocksOf(pool: number): Map<number, { keys: Float32Array[]; values: Float32Array[] }> {
    let blocks = this.prefixBlocks.get(pool);
    if (!blocks) this.prefixBlocks.set(pool, (blocks = new Map()));
    return blocks;
  }

  private stateOf(id: number): PoolState {
    const p = this.pools.get(id);
    if (!p) throw new Error(`no KV pool ${id}`);
    return p;
  }

  private poolOf(id: number): KvPool {
    return this.stateOf(id).kv;
  }
}

export type RuntimeMethod = keyof RuntimeCore & ('open' | 'run' | 'runVision' | 'release' | 'createPool' | 'dropPool' | 'runPooled' | 'copySlot' | 'readSlot' | 'restoreBlocks' | 'saveBlocks');
