import * as ort from 'onnxruntime-node';
import type { TextConfig } from '../model/config.js';

interface LayerViews {
  key: ort.Tensor;
  value: ort.Tensor;
}

/**
 * Capacity grows in steps of this many positions rather than doubling: attention reads every slot's
 * whole capacity each step, so slack costs bandwidth on every step while a growth copy happens once.
 */
const GROWTH_STEP = 128;

/**
 * The KV cache of the pooled decoder: per layer one [slots, kvH, capacity, D] buffer for keys and
 * one for values, read by the decoder as zero-copy inputs. It lives where the sessions run
 * (RuntimeCore, on the ONNX Runtime thread) and holds data only: how many positions of a slot are
 * valid is the sequence's `cacheLength`, which callers pass in. Capacity starts small and grows
 * when a sequence outgrows it, so a step's attention reads about as many positions as the longest
 * live sequence needs.
 *
 * A growth changes every row's stride, so rows move. The buffers reserve room for about twice the
 * capacity and rows move within them (copyWithin, last row first): a fresh buffer per growth paid a
 * page fault for each of its pages (~12 us each on our machines: 77 ms for the tiny model's 16
 * slots at 896 positions, seconds for a 3B-shaped model) and held the old and new pools at once.
 * Only outgrowing the reserve allocates, log2(maxLen / initial) times at most.
 */
export class KvPool {
  private keys: Float32Array[] = [];
  private values: Float32Array[] = [];
  capacity: number;
  /** Positions per row the buffers have room for. */
  private reserve = 0;

  constructor(readonly text: TextConfig, readonly slots: number, readonly maxLen: number, initialCapacity = 256) {
    this.capacity = Math.min(initialCapacity, maxLen);
    this.allocate(Math.min(maxLen, 2 * this.capacity));
  }

  private get slotSize(): number {
    return this.text.num_key_value_heads * this.capacity * this.text.head_dim;
  }

  /** Fresh buffers with room for `reserve` positions per row, holding the current rows at the current stride. */
  private allocate(reserve: number): void {
    const size = this.slots * this.text.num_key_value_heads * reserve * this.text.head_dim;
    const used = this.slots * this.slotSize;
    const fresh = (old: Float32Array | undefined) => {
      const b = new Float32Array(size);
      if (old) b.set(old.subarray(0, used));
      return b;
    };
    this.keys = Array.from({ length: this.text.num_hidden_layers }, (_, i) => fresh(this.keys[i]));
    this.values = Array.from({ length: this.text.num_hidden_layers }, (_, i) => fresh(this.values[i]));
    this.reserve = reserve;
  }

  /** Grows capacity (up to maxLen) so `length` positions fit, moving each row to its new stride. */
  ensureCapacity(length: number): void {
    if (length <= this.capacity) return;
    if (length > this.maxLen) throw new Error(`KV pool: ${length} positions exceed maxLen ${this.maxLen}`);
    const cap = Math.min(this.maxLen, Math.ceil((length + GROWTH_STEP / 2) / GROWTH_STEP) * GROWTH_STEP);
    if (cap > this.reserve) this.allocate(Math.min(this.maxLen, Math.max(cap, 2 * this.reserve)));
    const d = this.text.head_dim;
    const old = this.capacity;
    // Row r moves from r * old to r * cap (further on): the last row first, so no row is overwritten before it moves.
    for (const buf of [...this.keys, ...this.values]) {
      for (let r = this.slots * this.text.num_key_value_heads - 1; r > 0; r--) buf.copyWithin(r * cap * d, r * old * d, (r * old + old) * d);
    }
    this.capacity = cap;
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
   * Writes `n` positions of row `row` of a decoder output (per layer [rows, kvH, s, D]) into
   * `slot` from position `at`.
   */
  write(slot: number, at: number, newKeys: Float32Array[], newValues: Float32Array[], row: number, s: number, n: number): void {
    const { num_key_value_heads: kvH, head_dim: d } = this.text;
    const cap = this.capacity;
    for (let layer = 0; layer < newKeys.length; layer++) {
      const keys = this.keys[layer]!;
      const values = this.values[layer]!;
      for (let h = 0; h < kvH; h++) {
        const src = (row * kvH + h) * s * d;
        const dst = ((slot * kvH + h) * cap + at) * d;
        keys.set(newKeys[layer]!.subarray(src, src + n * d), dst);
        values.set(newValues[layer]!.subarray(src, src + n * d), dst);
      }
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
  }
}
