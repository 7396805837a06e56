import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RopePositions } from '../../src/model/processor/rope-index.js';
import { resolveEngineConfig } from '../../src/engine/engine-config.js';
import { GREEDY } from '../../src/engine/sampler.js';
import { prefillShares, Scheduler } from '../../src/engine/scheduler.js';
import { Sequence } from '../../src/engine/sequence.js';

const seqOf = (id: string, promptTokens: number) => new Sequence(
  id,
  { messages: [], sampling: GREEDY, maxTokens: 8, tools: [], maxToolCalls: 0, stop: [] },
  { ids: Array.from({ length: promptTokens }, (_, i) => i), positions: [[], [], []], visuals: [] },
  new RopePositions(),
  { images: [], enabledTools: [] } as never,
  { resolve: () => {}, reject: () => {} },
);

test('pending turns are fed whole, oldest first, within the token budget; only the oldest is cut when longer than a whole budget', () => {
  assert.deepEqual(prefillShares([300, 400, 200, 10], 512), [300, 0, 200, 10]);
  assert.deepEqual(prefillShares([900, 100], 512), [512, 0]);
  assert.deepEqual(prefillShares([100, 900, 300], 512), [100, 0, 300]);
  assert.deepEqual(prefillShares([], 512), []);
});

test('a step prefills the shares of the prefilling sequences; upNext lists what the following step would feed', () => {
  const scheduler = new Scheduler(resolveEngineConfig({ maxModelLen: 4096, maxNumSeqs: 4, maxNumBatchedTokens: 512 }));
  const seqs = [seqOf('a', 300), seqOf('b', 400), seqOf('c', 200), seqOf('d', 500)];
  seqs.forEach((s) => scheduler.add(s));
  assert.deepEqual(scheduler.admit(), seqs);
  assert.deepEqual(scheduler.decodeBatch(), []);
  const chunks = scheduler.prefillChunks();
  assert.deepEqual(chunks.map((c) => [c.seq.id, c.tokens]), [['a', 300], ['c', 200]]);
  // After this step b (400) and d (500) are left: b fits the next budget whole, d waits.
  assert.deepEqual(scheduler.upNext(chunks).map((s) => s.id), ['b']);
  // A sequence fully planned now is not up next; a paused one is never.
  seqs[1]!.status = 'paused';
  assert.deepEqual(scheduler.upNext([{ seq: seqs[0]!, tokens: 300 }]).map((s) => s.id), ['c']);
  const tight = new Scheduler(resolveEngineConfig({ maxModelLen: 4096, maxNumSeqs: 4, maxNumBatchedTokens: 100 }));
  const more = [seqOf('e', 150), seqOf('f', 150), seqOf('g', 10)];
  more.forEach((s) => tight.add(s));
  tight.admit();
  const p = tight.prefillChunks();
  assert.deepEqual(p.map((c) => [c.seq.id, c.tokens]), [['e', 100]]);
  assert.deepEqual(tight.upNext(p).map((s) => s.id), ['e', 'g']);
});
