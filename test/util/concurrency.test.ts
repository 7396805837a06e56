import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapConcurrent } from '../../src/util/concurrency.js';

test('mapConcurrent keeps the input order and never has more than limit calls in flight', async () => {
  let inFlight = 0;
  let most = 0;
  const out = await mapConcurrent([5, 1, 4, 2, 3, 0, 6], 3, async (x, i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await sleep(x);
    inFlight--;
    return `${i}:${x}`;
  });
  assert.deepEqual(out, ['0:5', '1:1', '2:4', '3:2', '4:3', '5:0', '6:6']);
  assert.equal(most, 3);
  assert.deepEqual(await mapConcurrent([], 4, async (x) => x), []);
  assert.deepEqual(await mapConcurrent([1, 2], 0, async (x) => x * 2), [2, 4], 'a limit of 0 still runs one at a time');
});

test('mapConcurrent rejects with the first failure', async () => {
  await assert.rejects(mapConcurrent([1, 2, 3], 2, async (x) => { if (x === 2) throw new Error('bad 2'); return x; }), /bad 2/);
});
