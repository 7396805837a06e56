import type { EngineConfig } from './engine-config.js';
import type { KvCache, KvPoolHandle, OnnxModel } from './onnx-model.js';
import { BLOCK_TOKENS, PrefixCache } from './prefix-cache.js';
import type { PendingChunk, Sequence } from './sequence.js';
import { int64Setter } from '../util/int64.js';

/** `tokens` pending tokens of one sequence to feed this step. */
export interface Chunk {
  seq: Sequence;
  tokens: number;
}

/** A decode row's answer: its logits, and its greedy token when the runtime picked it (a chaining call). */
export interface DecodedRow {
  seq: Sequence;
  logits: Float32Array;
  greedy?: number;
}

/**
 * A batched prefill pads every row to the longest chunk, and rows of slots between the chunks'
 * slots ride along inert: chunks share a call only while the padded work stays within this factor
 * of the real tokens.
 */
const MAX_PADDED_WORK = 1.25;

/**
 * Owns the KV cache (the slot pool of the pooled decoder, kept on the model's runtime, or
 * per-sequence caches in the standard layout) and the prefix cache, builds the model's inputs from the scheduled sequences and runs
 * them. Feeding tokens advances a sequence's `pending.fed` and `cacheLength` together with its KV.
 */
export class ModelRunner {
  private readonly kv?: KvPoolHandle;
  private readonly prefixCache?: PrefixCache;
  private readonly standardCaches = new Map<Sequence, KvCache>();
  /** Visual encodes in flight or done, by the pending turn they belong to. */
  private readonly encoding = new WeakMap<PendingChunk, Promise<void>>();
  /** Decode rows posted and not yet answered, by sequence. */
  private readonly decoding = new Map<Sequence, number>();

  constructor(readonly model: OnnxModel, private readonly config: EngineConfig) {
    if (!model.fast) return;
    this.kv = model.createPool(config.maxNumSeqs, config.maxModelLen);
    if (config.enablePrefixCaching) this.prefixCache = new PrefixCache(this.kv, config.prefixCacheBlocks);
  }

  /** Tokens of the prompt's opening text (before any visual token) that may be cached. */
  private cacheablePrefix(seq: Sequence): number {
    const p = seq.pending;
    // At least one token is left to feed: its logits give the first sample.
    return Math.min(p.visuals[0]?.start ?? p.ids.length, p.ids.length - 1);
  }

  /**
   * Starts newly admitted sequences from the cached KV of their prompts' opening text, if any (counted in the
   * metrics). The copies are posted together: the runtime makes one after another without a round trip between them.
   */
  async restorePrefixes(seqs: Sequence[]): Promise<void> {
    await Promise.all(seqs.map((seq) => this.restorePrefix(seq)));
  }

  private async restorePrefix(seq: Sequence): Promise<void> {
    if (!this.prefixCache || seq.cacheLength > 0) return;
    const limit = this.cacheablePrefix(seq);
    const hit = await this.prefixCache.restore(seq.slot!, seq.pending.ids, limit);
    seq.pending.fed = hit;
    seq.cacheLength = hit;
    seq.cachedPromptTokens = hit;
    this.config.metrics?.prefixQueries.inc(limit - (limit % BLOCK_TOKENS));
    this.config.metrics?.prefixHits.inc(hit);
    this.config.metrics?.promptTokens.inc(hit);
  }

  /** Gives a forked sample its parent's prompt cache. */
  async fork(parent: Sequence, child: Sequence): Promise<void> {
    if (this.kv) await this.kv.copy(parent.slot!, child.slot!, parent.cacheLength);
    else this.standardCaches.set(child, this.standardCaches.get(parent)!);
  }

  /** Drops a finished sequence's cache (a pool slot is simply reused). */
  free(seq: Sequence): void {
    this.standardCaches.delete(seq);
  }

  /** Drops the KV pool (the model itself may serve other engines). */
  async release(): Promise<void> {
    await this.kv?.release();
  }

  /**
   * Starts encoding the visual inputs pending in these sequences, small ones several per
   * vision-encoder call (up to visionPatchesPerCall patches). The calls are issued at once (the model
   * patchifies and posts two at a time, see OnnxModel.encodeVisual) and the runtime answers them in
   * order, so encoding ahead of a sequence's prefill fills the runtime's idle time while this thread samples.
   */
  private encodeAhead(seqs: Sequence[]): void {
    const todo = seqs.filter((s) => s.pending.visuals.length > 0 && !s.pending.features && !this.encoding.has(s.pending));
    if (todo.length === 0) return;
    const inputs = todo.flatMap((s) => s.pending.visuals.map((v) => v.input));
    const calls: Promise<Float32Array[]>[] = [];
    const patches = (x: (typeof inputs)[number]) => x.grid[0] * x.grid[1] * x.grid[2];
    for (let i = 0; i < inputs.length; ) {
      let j = i + 1;
      let total = patches(inputs[i]!);
      while (j < inputs.length && total + patches(inputs[j]!) <= this.config.visionPatchesPerCall) total += patches(inputs[j++]!);
      calls.push(this.model.encodeVisual(inputs.slice(i, j)));
      i = j;
    }
    const all = Promise.all(calls).then((parts) => {
      const features = parts.flat();
      let k = 0;
      for (const s of todo) s.pending.features = s.pending.visuals.map(() => features[k++]!);
    });
    all.catch(() => {}); // a failure surfaces where the features are awaited (encodeVisuals)
    for (const s of todo) this.encoding.set(s.pending, all);
  }

  /** Encodes (or waits for) the visual inputs pending in these sequences. */
  private async encodeVisuals(seqs: Sequence[]): Promise<void> {
    this.encodeAhead(seqs);
    await Promise.all(seqs.map((s) => this.encoding.get(s.pending)));
  }

  /** True when decode calls can chain (the KV pool's runtime picks and embeds greedy tokens). */
  get chains(): boolean {
    return this.kv !== undefined;
  }

  /** True while any decode row is posted and not yet answered. */
  get decodeInFlight(): boolean {
    return this.decoding.size > 0;
  }

  /** True while a decode row of this sequence is posted and not yet answered. */
  isDecoding(seq: Sequence): boolean {
    return this.decoding.has(seq);
  }

  /**
   * One token for each sequence in one batched call. With `chain` (vLLM's async scheduling), the
   * call may be posted while a sequence's previous row is still in flight: its row then feeds the
   * token that row will give, forced by the caller's overrideToken or else chained (the greedy
   * token, picked and embedded on the runtime), and every row's greedy token is kept for the next
   * call. A row whose sequence stopped running after the call was posted (finished, paused) answers
   * undefined: its KV write lies past the sequence's cache, where a later prefill overwrites it or
   * nothing reads it.
   */
  async decode(seqs: Sequence[], chain = false): Promise<(DecodedRow | undefined)[]> {
    if (!this.kv) return (await this.runStandard(seqs.map((seq) => ({ seq, tokens: 1 })))).map((logits, i) => ({ seq: seqs[i]!, logits }));
    const ahead = seqs.map((seq) => this.decoding.has(seq));
    if (!chain && ahead.some(Boolean)) throw new Error('a decode row is already in flight for this sequence');
    const epochs = seqs.map((seq) => seq.runEpoch);
    for (const seq of seqs) this.decoding.set(seq, (this.decoding.get(seq) ?? 0) + 1);
    try {
      const { logits, greedy } = await this.runDecode(seqs, ahead, chain);
      return seqs.map((seq, i) => {
        if (seq.runEpoch !== epochs[i]) return undefined;
        seq.pending.fed += 1;
        seq.cacheLength += 1;
        return { seq, logits: logits[i]!, greedy: greedy?.[i] };
      });
    } finally {
      for (const seq of seqs) {
        const n = this.decoding.get(seq)! - 1;
        if (n > 0) this.decoding.set(seq, n);
        else this.decoding.delete(seq);
      }
    }
  }

  /**
   * One pooled-decoder call of one token a row. A row `ahead` feeds the token after the one still in
   * flight, one position further: forced, or chained on the runtime. Every row's token is embedded on the
   * runtime, so the call is posted before this function first awaits: it reads the sequences' lengths
   * before an answer in flight moves them, and it reaches the runtime before any later call on its slots.
   */
  private async runDecode(seqs: Sequence[], ahead: boolean[], keepGreedy: boolean): Promise<{ logits: Float32Array[]; greedy?: number[] }> {
    const { hidden_size: h, vocab_size: v } = this.model.config.text;
    const slots = seqs.map((seq) => seq.slot!);
    const first = Math.min(...slots);
    const rows = Math.max(...slots) - first + 1;
    const positions = new BigInt64Array(3 * rows);
    const setPosition = int64Setter(positions);
    const pastLengths = new Array<number>(rows).fill(0);
    const tokens: { row: number; token?: number }[] = [];
    const writes = seqs.map((seq, i) => {
      const row = slots[i]! - first;
      const at = seq.cacheLength + (ahead[i] ? 1 : 0);
      // The token after the in-flight one is text: the next rope position on all three axes (RopePositions.text).
      const p = seq.pending;
      for (let a = 0; a < 3; a++) setPosition(a * rows + row, ahead[i] ? seq.rope.next : p.positions[a]![p.fed]!);
      // Undefined for a row ahead with no forced token: the runtime chains the slot's greedy token.
      tokens.push({ row, token: ahead[i] ? seq.forcedToken(seq.generated.length) : p.ids[p.fed] });
      pastLengths[row] = at;
      return { row, slot: slots[i]!, at, n: 1 };
    });
    const call = { rows, s: 1, first, embeds: new Float32Array(rows * h), positions, pastLengths, writes, greedy: keepGreedy, tokens };
    const out = await this.model.runPooled(this.kv!, call);
    return {
      logits: writes.map(({ row }) => out.logits.subarray(row * v, (row + 1) * v)),
      greedy: out.greedy && writes.map(({ row }) => out.greedy![row]!),
    };
  }

  /**
   * Prompt and tool-result chunks, batched where padding stays cheap, once their visual inputs are encoded; returns
   * each chunk's last-token logits. The visual inputs of what the next step will feed (`upNext`, asked once these
   * are encoded) are encoded meanwhile: queued behind the prefill's calls when their embeddings are made on this
   * thread (a model with the shared embedding table), else ahead of them.
   */
  async prefill(chunks: Chunk[], upNext: () => Sequence[] = () => []): Promise<Float32Array[]> {
    await this.encodeVisuals(chunks.map((c) => c.seq));
    const next = upNext();
    if (next.length > 0) setImmediate(() => this.encodeAhead(next));
    if (!this.kv) return this.runStandard(chunks);
    const groups = this.model.raggedPrefill ? groupBySlot(chunks) : chunks.map((c) => [c]);
    const logits = new Map<Chunk, Float32Array>();
    // Every group's call is posted before the first answers (the runtime runs them in order).
    (await Promise.all(groups.map((g) => this.runRows(g)))).forEach((rows, k) => rows.forEach((l, i) => logits.set(groups[k]![i]!, l)));
    return chunks.map((c) => logits.get(c)!);
  }

  /**
   * One pooled-decoder call over slots [first, last] of the chunks: rows padded to the longest
   * chunk; rows of other slots are inert (no past, outputs ignored, nothing written).
   */
  private async runRows(chunks: Chunk[]): Promise<Float32Array[]> {
    const { hidden_size: h, vocab_size: v } = this.model.config.text;
    const slots = chunks.map((c) => c.seq.slot!);
    const first = Math.min(...slots);
    const rows = Math.max(...slots) - first + 1;
    const s = Math.max(...chunks.map((c) => c.tokens));
    const embeds = new Float32Array(rows * s * h);
    const positions = new BigInt64Array(3 * rows * s);
    const setPosition = int64Setter(positions);
    const pastLengths = new Array<number>(rows).fill(0);
    const lastIndex = new Array<number>(rows).fill(0);
    const rowEmbeds = await this.embedChunks(chunks);
    chunks.forEach((c, i) => {
      const r = slots[i]! - first;
      const p = c.seq.pending;
      embeds.set(rowEmbeds[i]!, r * s * h);
      for (let a = 0; a < 3; a++) {
        const axis = p.positions[a]!;
        for (let t = 0; t < c.tokens; t++) setPosition((a * rows + r) * s + t, axis[p.fed + t]!);
      }
      pastLengths[r] = c.seq.cacheLength;
      lastIndex[r] = c.tokens - 1;
    });
    const writes = chunks.map((c, i) => ({ row: slots[i]! - first, slot: slots[i]!, at: c.seq.cacheLength, n: c.tokens }));
    const { logits } = await this.model.runPooled(this.kv!, { rows, s, first, embeds, positions, pastLengths, lastIndex, writes });
    const out: Float32Array[] = [];
    for (const [i, c] of chunks.entries()) {
      const r = slots[i]! - first;
      await this.advance(c);
      out.push(logits.subarray(r * v, (r + 1) * v));
    }
    return out;
  }

  /** The standard-layout decoder: one call per chunk, each sequence with its own growing cache. */
  private async runStandard(chunks: Chunk[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const [i, embeds] of (await this.embedChunks(chunks)).entries()) {
      const c = chunks[i]!;
      const p = c.seq.pending;
      const positions = new BigInt64Array(3 * c.tokens);
      const setPosition = int64Setter(positions);
      p.positions.forEach((axis, a) => { for (let t = 0; t < c.tokens; t++) setPosition(a * c.tokens + t, axis[p.fed + t]!); });
      const r = await this.model.forward(embeds, positions, this.standardCaches.get(c.seq) ?? this.model.emptyCache());
      this.standardCaches.set(c.seq, r.cache);
      await this.advance(c);
      out.push(r.logits);
    }
    return out;
  }

  /** Marks a chunk fed; a chunk fed from position 0 (a prompt) offers its opening text's blocks to the prefix cache. */
  private async advance(c: Chunk): Promise<void> {
    const seq = c.seq;
    seq.pending.fed += c.tokens;
    seq.cacheLength += c.tokens;
    // Only a chunk that covered some of the prompt's cacheable opening text has blocks to offer.
    if (this.prefixCache && seq.cacheLength === seq.pending.fed && seq.pending.fed - c.tokens < this.cacheablePrefix(seq)) {
      await this.prefixCache.store(seq.slot!, seq.pending.ids, Math.min(seq.pending.fed, this.cacheablePrefix(seq)));
    }
  }

  /** Each chunk's input embeddings [tokens * hidden] (one embedding call for all), visual rows replaced by their features. */
  private async embedChunks(chunks: Chunk[]): Promise<Float32Array[]> {
    const h = this.model.config.text.hidden_size;
    const all = await this.model.embed(chunks.flatMap((c) => c.seq.pending.ids.slice(c.seq.pending.fed, c.seq.pending.fed + c.tokens)));
    let offset = 0;
    return chunks.map((c) => {
      const p = c.seq.pending;
      const start = p.fed;
      const embeds = all.subarray(offset * h, (offset + c.tokens) * h);
      offset += c.tokens;
      p.visuals.forEach((vis, k) => {
        const lo = Math.max(start, vis.start);
        const hi = Math.min(start + c.tokens, vis.start + vis.input.numTokens);
        if (lo < hi) embeds.set(p.features![k]!.subarray((lo - vis.start) * h, (hi - vis.start) * h), (lo - start) * h);
      });
      return embeds;
    });
  }
}

/**
 * Groups chunks (by slot order) into calls whose padded work (rows spanned x longest chunk) stays
 * within MAX_PADDED_WORK of their real tokens.
 */
function groupBySlot(chunks: Chunk[]): Chunk[][] {
  const sorted = [...chunks].sort((a, b) => a.seq.slot! - b.seq.slot!);
  const groups: Chunk[][] = [];
  let group: Chunk[] = [];
  for (const c of sorted) {
    const next = [...group, c];
    const span = c.seq.slot! - next[0]!.seq.slot! + 1;
    const work = span * Math.max(...next.map((x) => x.tokens));
    const real = next.reduce((a, x) => a + x.tokens, 0);
    if (group.length > 0 && work > MAX_PADDED_WORK * real) {
      groups.push(group);
      group = [c];
    } else group = next;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
