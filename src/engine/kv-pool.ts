import * as ort from 'onnxruntime-node';
import type { TextConfig } from '../model/config.js';

export interface LayerViews {
  key: ort.Tensor;
  value: ort.Tensor;
}

/**
 * The KV cache of the fast decoder: per layer one preallocated [slots, kvH, capacity, D] buffer
 * for keys and one for values. A sequence owns one slot from admission to finish (paused or not).
 * The decoder reads the buffers as zero-copy inputs; the engine writes each step's new keys at
 * each row's own length. Capacity starts small and grows (one copy) when a sequence outgrows it,
 * so a step's attention reads about as many positions as the longest live sequence needs.
 * In standard-layout mode (external exports) only the slot accounting is used.
 */
const GROWTH_STEP = 128;

export class KvPool {
  private readonly free: number[];
  private keys: Float32Array[] = [];
  private values: Float32Array[] = [];
  capacity: number;
  /** Positions in use per slot. */
  private readonly used: number[];

  constructor(readonly text: TextConfig, readonly slots: number, readonly maxLen: number, private readonly withBuffers: boolean, initialCapacity = 256) {
    this.free = Array.from({ length: slots }, (_, i) => i);
    this.used = new Array<number>(slots).fill(0);
    this.capacity = Math.min(initialCapacity, maxLen);
    if (withBuffers) this.allocateBuffers();
  }

  private get slotSize(): number {
    return this.text.num_key_value_heads * this.capacity * this.text.head_dim;
  }

  private allocateBuffers(): void {
    const size = this.slots * this.slotSize;
    this.keys = Array.from({ length: this.text.num_hidden_layers }, () => new Float32Array(size));
    this.values = Array.from({ length: this.text.num_hidden_layers }, () => new Float32Array(size));
  }

  get freeSlots(): number {
    return this.free.length;
  }

  /** Lowest free slot, so active slots stay packed at the front (decode batches span [0, max]). */
  allocate(): number | undefined {
    if (this.free.length === 0) return undefined;
    this.free.sort((a, b) => a - b);
    return this.free.shift();
  }

  release(slot: number): void {
    this.used[slot] = 0;
    if (!this.free.includes(slot)) this.free.push(slot);
  }

  lengthOf(slot: number): number {
    return this.used[slot]!;
  }

  /** Fraction of the pool's positions (slots x maxLen) in use (vLLM's kv_cache_usage_perc). */
  usage(): number {
    return this.used.reduce((a, b) => a + b, 0) / (this.slots * this.maxLen);
  }

  /** Grows capacity (doubling, up to maxLen) so `length` positions fit; copies the live prefix once. */
  ensureCapacity(length: number): void {
    if (length <= this.capacity) return;
    if (length > this.maxLen) throw new Error(`KV pool: ${length} positions exceed maxLen ${this.maxLen}`);
    // Grow in steps of GROWTH_STEP rather than doubling: attention reads every slot's whole
    // capacity each step, so slack costs bandwidth on every step while a growth copy happens once.
    const cap = Math.min(this.maxLen, Math.ceil((length + GROWTH_STEP / 2) / GROWTH_STEP) * GROWTH_STEP);
    if (!this.withBuffers) {
      this.capacity = cap;
      return;
    }
    const { num_key_value_heads: kvH, head_dim: d } = this.text;
    const old = { keys: this.keys, values: this.values, cap: this.capacity };
    this.capacity = cap;
    this.allocateBuffers();
    for (const [src, dst] of [[old.keys, this.keys], [old.values, this.values]] as const) {
      src.forEach((buf, layer) => {
        for (let r = 0; r < this.slots * kvH; r++) {
          const n = Math.min(this.used[Math.floor(r / kvH)]!, old.cap) * d;
          dst[layer]!.set(buf.subarray(r * old.cap * d, r * old.cap * d + n), r * cap * d);
        }
      });
    }
  }

  /** Views of slots [first, first + count) for every layer, shaped [count, kvH, capacity, D]. */
  views(first: number, count: number): LayerViews[] {
    const shape = [count, this.text.num_key_value_heads, this.capacity, this.text.head_dim];
    const lo = first * this.slotSize;
    const hi = (first + count) * this.slotSize;
    return this.keys.map((k, i) => ({
      key: new ort.Tensor('float32', k.subarray(lo, hi), shape),
      value: new ort.Tensor('float32', this.values[i]!.subarray(lo, hi), shape),
    }));
  }

  /**
   * Writes new keys/values [rows, kvH, s, D] (per layer) of row r into slot first + r after its
   * current length, for the rows listed in `rows`.
   */
  write(first: number, newKeys: Float32Array[], newValues: Float32Array[], s: number, rows: number[]): void {
    const { num_key_value_heads: kvH, head_dim: d } = this.text;
    const cap = this.capacity;
    for (const r of rows) {
      const slot = first + r;
      const at = this.used[slot]!;
      for (let layer = 0; layer < newKeys.length; layer++) {
        for (let h = 0; h < kvH; h++) {
          const src = ((r * kvH + h) * s) * d;
          const dst = ((slot * kvH + h) * cap + at) * d;
          this.keys[layer]!.set(newKeys[layer]!.subarray(src, src + s * d), dst);
          this.values[layer]!.set(newValues[layer]!.subarray(src, src + s * d), dst);
        }
      }
      this.used[slot] = at + s;
    }
  }

  /** Copies positions [from, from + n) of a slot out of the pool: per layer [kvH, n, D] keys and values. */
  read(slot: number, from: number, n: number): { keys: Float32Array[]; values: Float32Array[] } {
    const { num_key_value_heads: kvH, head_dim: d } = this.text;
    const cap = this.capacity;
    const take = (buffers: Float32Array[]) => buffers.map((b) => {
      const out = new Float32Array(kvH * n * d);
      for (let h = 0; h < kvH; h++) {
        const src = ((slot * kvH + h) * cap + from) * d;
        out.set(b.subarray(src, src + n * d), h * n * d);
      }
      return out;
    });
    return { keys: take(this.keys), values: take(this.values) };
  }

  /** Marks `n` more positions of a slot as used without writing them (standard-layout mode keeps no buffers; the benchmark uses it to stand in for cached positions). */
  advance(slot: number, n: number): void {
    this.used[slot] = this.used[slot]! + n;
  }

  /** Copies the first `length` positions of a slot into another (n > 1 samples share one prefill). */
  copy(from: number, to: number, length: number): void {
    const { num_key_value_heads: kvH, head_dim: d } = this.text;
    const cap = this.capacity;
    for (const buffers of [this.keys, this.values]) {
      for (const b of buffers) {
        for (let h = 0; h < kvH; h++) {
          const src = (from * kvH + h) * cap * d;
          b.copyWithin((to * kvH + h) * cap * d, src, src + length * d);
        }
      }
    }
    this.used[to] = length;
  }
}
