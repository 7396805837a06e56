import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkerPool } from '../../src/util/worker-pool.js';

const ECHO_WORKER = new URL('../model/processor/fixtures/pool-test-worker.ts', import.meta.url);

test('a payload that cannot be posted fails alone; the tasks pipelined around it keep their own answers', { timeout: 20_000 }, async () => {
  // One worker taking every task at once, as the ONNX Runtime thread does: answers are matched to tasks by order.
  const pool = new WorkerPool(ECHO_WORKER, 1, Infinity);
  try {
    const results = await Promise.allSettled([
      pool.run({ op: 'echo', value: 'a', busyMs: 100 }),
      pool.run({ op: 'echo', value: () => 1 }),
      pool.run({ op: 'echo', value: 'b' }),
      pool.run({ op: 'echo', value: 'c' }),
    ]);
    assert.deepEqual(results[0], { status: 'fulfilled', value: 'a' });
    assert.equal(results[1]!.status, 'rejected');
    assert.match(String((results[1] as PromiseRejectedResult).reason), /could not be cloned/);
    assert.deepEqual(results.slice(2), [{ status: 'fulfilled', value: 'b' }, { status: 'fulfilled', value: 'c' }]);
    assert.equal(pool.workers, 1);
  } finally {
    await pool.close();
  }
});
