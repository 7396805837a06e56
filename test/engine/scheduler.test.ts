import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RopePositions } from '../../src/model/processor/rope-index.js';
import { resolveEngineConfig } from '../../src/engine/engine-config.js';
import { GREEDY } from '../../src/engine/sampler.js';
import { Scheduler } from '../../src/engine/scheduler.js';
import { Sequence } from '../../src/engine/sequence.js';

const seqOf = (id: string, promptTokens: number) => new Sequence(
  id,
  { messages: [], sampling: GREEDY, maxTokens: 8, tools: [], maxToolCalls: 0, stop: [] },
  { ids: Array.from({ length: promptTokens }, (_, i) => i), positions: [[], [], []], visuals: [] },
  new RopePositions(),
  { images: [], enabledTools: [] } as never,
  { resolve: () => {}, reject: () => {} },
);

test('prompts are chunked oldest first within the token budget; upNext lists what the following step would feed', () => {
  const scheduler = new Scheduler(resolveEngineConfig({ maxModelLen: 4096, maxNumSeqs: 4, maxNumBatchedTokens: 512 }));
  const seqs = [seqOf('a', 300), seqOf('b', 400), seqOf('c', 200), seqOf('d', 500)];
  seqs.forEach((s) => scheduler.add(s));
  assert.deepEqual(scheduler.admit(), seqs);
  const plan = scheduler.schedule();
  assert.deepEqual(plan.prefill.map((c) => [c.seq.id, c.tokens]), [['a', 300], ['b', 212]]);
  // After this step b has 188 tokens left and c 200: 388 of the next budget, so d still starts in it.
  assert.deepEqual(scheduler.upNext(plan).map((s) => s.id), ['b', 'c', 'd']);
  // A sequence fully planned now is not up next; a paused one is never.
  seqs[1]!.status = 'paused';
  assert.deepEqual(scheduler.upNext({ decode: [], prefill: [{ seq: seqs[0]!, tokens: 300 }] }).map((s) => s.id), ['c', 'd']);
  const tight = new Scheduler(resolveEngineConfig({ maxModelLen: 4096, maxNumSeqs: 4, maxNumBatchedTokens: 100 }));
  const more = [seqOf('e', 150), seqOf('f', 150), seqOf('g', 10)];
  more.forEach((s) => tight.add(s));
  tight.admit();
  const p = tight.schedule();
  assert.deepEqual(p.prefill.map((c) => [c.seq.id, c.tokens]), [['e', 100]]);
  assert.deepEqual(tight.upNext(p).map((s) => s.id), ['e', 'f']);
});
