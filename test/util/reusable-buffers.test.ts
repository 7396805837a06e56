import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { ReusableBuffers } from '../../src/util/reusable-buffers.js';

const MiB = 2 ** 20;

test('a given-back buffer is reused for the next input that fits; detached, oversized or repeated ones are not kept', () => {
  const pool = new ReusableBuffers(16 * MiB, 2);
  const a = pool.take(1000);
  assert.equal(a.length, 1000);
  assert.equal(a.buffer.byteLength, MiB, 'rounded up to 1 MiB');
  pool.give(a.buffer);
  pool.give(a.buffer);
  assert.ok(pool.take(MiB / 4).buffer === a.buffer, 'exactly 1 MiB of floats fits the same buffer');
  assert.ok(pool.take(10).buffer !== a.buffer, 'given once, taken once');

  const big = pool.take(3 * MiB); // 12 MiB
  pool.give(big.buffer);
  assert.ok(pool.take(MiB).buffer === big.buffer, 'a larger free buffer serves a smaller input');
  const huge = pool.take(5 * MiB); // 20 MiB: over keepBytes
  pool.give(huge.buffer);
  assert.ok(pool.take(5 * MiB).buffer !== huge.buffer);

  const sent = pool.take(100);
  new MessageChannel().port1.postMessage(sent, [sent.buffer as ArrayBuffer]);
  pool.give(sent.buffer); // detached by the transfer
  assert.equal(pool.take(100).buffer.byteLength, MiB);
});
