import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromHalf, readSafetensors, toHalf, writeSafetensors } from '../../src/model/safetensors.js';
import type { Weights } from '../../src/model/weights.js';

test('half precision round-trips exactly representable values and rounds to nearest even', () => {
  for (const v of [0, 1, -2, 0.5, 65504, 2 ** -24, -(2 ** -14), 1 + 2 ** -10]) assert.equal(fromHalf(toHalf(v)), v);
  assert.equal(fromHalf(toHalf(1 + 2 ** -11)), 1, 'a tie rounds to the even mantissa');
  assert.equal(fromHalf(toHalf(1 + 3 * 2 ** -11)), 1 + 2 ** -9, 'a tie rounds up to the even mantissa');
  assert.equal(fromHalf(toHalf(1e6)), Infinity);
  assert.ok(Number.isNaN(fromHalf(toHalf(NaN))));
  let worst = 0;
  // Normal halves (|v| >= 2^-14) round to within 2^-11 relative; subnormals lose more by design.
  for (let i = 0; i < 1000; i++) {
    const v = (i % 2 ? 1 : -1) * (2 ** -14 + (i / 1000) * 8);
    worst = Math.max(worst, Math.abs(fromHalf(toHalf(v)) - v) / Math.abs(v));
  }
  assert.ok(worst <= 2 ** -11, `relative error ${worst}`);
});

test('safetensors files round-trip fp32 exactly, fp16 and bf16 to their precision, with an 8-aligned header', async () => {
  const weights: Weights = new Map([
    ['b.weight', { dims: [2, 3], data: Float32Array.from([1, -2, 3.25, 0.1, 1e-3, -7]) }],
    ['a.bias', { dims: [1], data: Float32Array.from([0.333]) }],
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'prs-st-'));
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const file = join(dir, `${dtype}.safetensors`);
    await writeSafetensors(file, weights, dtype);
    const bytes = readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + headerLength) % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
    assert.deepEqual(header['a.bias'], { dtype, shape: [1], data_offsets: [0, dtype === 'F32' ? 4 : 2] }, 'names sorted, offsets in bytes');
    const back = await readSafetensors(file);
    for (const [name, w] of weights) {
      assert.deepEqual(back.get(name)!.dims, w.dims);
      w.data.forEach((v, i) => assert.ok(Math.abs(back.get(name)!.data[i]! - v) <= (dtype === 'F32' ? 0 : Math.abs(v) * (dtype === 'F16' ? 2 ** -11 : 2 ** -8)), `${dtype} ${name}[${i}]`));
    }
  }
});
