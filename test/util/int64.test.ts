import assert from 'node:assert/strict';
import { test } from 'node:test';
import { int64Setter } from '../../src/util/int64.js';

test('int64Setter writes int32-range integers as BigInt64Array elements, at any offset of a shared buffer', () => {
  const buffer = new ArrayBuffer(8 * 10);
  const target = new BigInt64Array(buffer, 16, 6);
  new BigInt64Array(buffer).fill(-7n);
  const set = int64Setter(target);
  const values = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 123456];
  values.forEach((v, i) => set(i, v));
  assert.deepEqual(Array.from(target), values.map(BigInt));
  assert.deepEqual(Array.from(new BigInt64Array(buffer, 0, 2)), [-7n, -7n], 'nothing before the view is written');
  assert.deepEqual(Array.from(new BigInt64Array(buffer, 64, 2)), [-7n, -7n], 'nor after it');
  assert.throws(() => set(0, 2 ** 31), RangeError);
  assert.throws(() => set(0, 1.5), RangeError);
});
