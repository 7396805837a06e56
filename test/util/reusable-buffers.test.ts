import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { ReusableBuffers } from '../../src/util/reusable-buffers.js';

const MiB = 2 ** 20;

test('a given-back buffer is reused for the next input that fits; detached, oversized or repeated ones are not kept', () => {
  const pool = new ReusableBuffers(16 * MiB, 2);
  const a = pool.take(4000);
  assert.equal(a.byteLength, MiB, 'rounded up to 1 MiB');
  assert.equal(pool.take(0).byteLength, MiB, 'an empty input still gets a buffer');
  pool.give(a);
  pool.give(a);
  assert.ok(pool.take(MiB) === a, 'exactly 1 MiB fits the same buffer');
  assert.ok(pool.take(10) !== a, 'given once, taken once');

  const big = pool.take(12 * MiB);
  pool.give(big);
  assert.ok(pool.take(MiB) === big, 'a larger free buffer serves a smaller input');
  const huge = pool.take(20 * MiB); // over keepBytes
  pool.give(huge);
  assert.ok(pool.take(20 * MiB) !== huge);

  const sent = pool.take(100);
  new MessageChannel().port1.postMessage(sent, [sent]);
  pool.give(sent); // detached by the transfer
  assert.equal(pool.take(100).byteLength, MiB);
});
