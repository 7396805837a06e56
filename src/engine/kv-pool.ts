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
 * The KV cache of the pooled decoder: per layer one preallocated [slots, kvH, capacity, D] buffer
 * for keys and one for values, read by the decoder as zero-copy inputs. It lives where the sessions
 * run (RuntimeCore, on the ONNX Runtime thread) and holds data only: how
 * many positions of a slot are valid is the sequence's `cacheLength`, which callers pass in.
 * Capacity starts small and grows (one copy) when a sequence outgrows it, so a step's attention
 * reads about as many positions as the longest live sequence needs.
 */
export class KvPool {
  private keys: Float32Array[] = [];
  private values: Float32Array[] = [];
  capacity: number;

  constructor(readonly text: TextConfig, readonly slots: number, readonly maxLen: number, initialCapacity = 256) {
    this.capacity = Math.min(initialCapacity, maxLen);
    this.allocateBuffers();
  }

  private get slotSize(): number {
    return this.text.num_key_value_heads * this.capacity * this.text.head_dim;
  }

  private allocateBuffers(): void {
    const size = this.slots * this.slotSize;
    this.keys = Array.from({ length: this.text.num_hidden_layers }, () => new Float32Array(size));
    this.values = Array.from({ length: this.text.num_hidden_layers }, () => new Float32Array(size));
  }

  /** Grows capacity (up to maxLen) so `length` positions fit; copies the old contents once. */
  ensureCapacity(length: number): void {
    if (length <= this.capacity) return;
    if (length > this.maxLen) throw new Error(`KV pool: ${length} positions exceed maxLen ${this.maxLen}`);
    const cap = Math.min(this.maxLen, Math.ceil((length + GROWTH_STEP / 2) / GROWTH_STEP) * GROWTH_STEP);
    const d = this.text.head_dim;
    const old = { keys: this.keys, values: this.values, cap: this.capacity };
    this.capacity = cap;
    this.allocateBuffers();
    for (const [src, dst] of [[old.keys, this.keys], [old.values, this.values]] as const) {
      src.forEach((buf, layer) => {
        for (let r = 0; r < this.slots * this.text.num_key_value_heads; r++) {
          dst[layer]!.set(buf.subarray(r * old.cap * d, (r + 1) * old.cap * d), r * cap * d);
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
