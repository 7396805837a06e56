import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GREEDY, logSoftmax, sampleToken, type SamplingParams } from '../../src/engine/sampler.js';
import { Rng } from '../../src/util/random.js';

const logits = Float32Array.from([0.1, 2.5, 2.4, -1, 0.3]);
const params = (p: Partial<SamplingParams>): SamplingParams => ({ ...GREEDY, ...p });

test('temperature 0 is argmax', () => {
  assert.equal(sampleToken(logits, GREEDY, new Rng(1), new Map()), 1);
});

test('top_k=1 and a tiny top_p reduce sampling to argmax', () => {
  for (let s = 0; s < 20; s++) {
    assert.equal(sampleToken(logits, params({ temperature: 1, topK: 1 }), new Rng(s), new Map()), 1);
    assert.equal(sampleToken(logits, params({ temperature: 1, topP: 0.01 }), new Rng(s), new Map()), 1);
  }
});

test('top_k=2 only ever picks the two best tokens; a seed reproduces the draw', () => {
  const seen = new Set<number>();
  for (let s = 0; s < 200; s++) seen.add(sampleToken(logits, params({ temperature: 1, topK: 2 }), new Rng(s), new Map()));
  assert.deepEqual([...seen].sort(), [1, 2]);
  const draw = (seed: number) => Array.from({ length: 10 }, ((rng) => () => sampleToken(logits, params({ temperature: 1.5 }), rng, new Map()))(new Rng(seed)));
  assert.deepEqual(draw(42), draw(42));
});

test('sampling frequencies follow softmax(logits / T)', () => {
  const rng = new Rng(3);
  const counts = new Array(5).fill(0);
  const n = 20000;
  for (let i = 0; i < n; i++) counts[sampleToken(logits, params({ temperature: 1 }), rng, new Map())]++;
  const p = logSoftmax(logits).map(Math.exp);
  counts.forEach((c, i) => assert.ok(Math.abs(c / n - p[i]!) < 0.015, `token ${i}: ${c / n} vs ${p[i]}`));
});

test('presence and frequency penalties lower repeated tokens', () => {
  const counts = new Map([[1, 3]]);
  assert.equal(sampleToken(logits, params({ presencePenalty: 0.2 }), new Rng(0), counts), 2);
  assert.equal(sampleToken(logits, params({ frequencyPenalty: 0.05 }), new Rng(0), counts), 2);
});
