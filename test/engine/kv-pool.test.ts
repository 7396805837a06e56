import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KvPool } from '../../src/engine/kv-pool.js';
import type { TextConfig } from '../../src/model/config.js';

const text = { num_hidden_layers: 2, num_key_value_heads: 2, head_dim: 4 } as TextConfig;

/** Per layer [1, kvH, n, D] keys (values negated) whose every float names its layer, slot, head, position and lane. */
function rows(slot: number, at: number, n: number): { keys: Float32Array[]; values: Float32Array[] } {
  const keys = [0, 1].map((layer) => Float32Array.from({ length: 2 * n * 4 }, (_, i) => {
    const h = Math.floor(i / (n * 4));
    const pos = at + Math.floor((i % (n * 4)) / 4);
    return layer * 1e6 + slot * 1e5 + h * 1e4 + pos * 10 + (i % 4);
  }));
  return { keys, values: keys.map((k) => k.map((x) => -x)) };
}

test('growing the pool keeps every slot\'s positions, within its reserve and past it', () => {
  const pool = new KvPool(text, 3, 4096, 8);
  const lengths = [5, 8, 3];
  lengths.forEach((n, slot) => {
    const r = rows(slot, 0, n);
    pool.write(slot, 0, r.keys, r.values, 0, n, n);
  });
  for (const length of [20, 100, 300, 1000, 2500]) {
    pool.ensureCapacity(length);
    assert.ok(pool.capacity >= length);
    // The next positions go where the grown layout puts them.
    const r = rows(1, lengths[1]!, 2);
    pool.write(1, lengths[1]!, r.keys, r.values, 0, 2, 2);
    lengths[1]! += 2;
    lengths.forEach((n, slot) => assert.deepEqual(pool.read(slot, 0, n), rows(slot, 0, n), `slot ${slot} at capacity ${pool.capacity}`));
  }
  assert.throws(() => pool.ensureCapacity(5000), /exceed maxLen/);
});
