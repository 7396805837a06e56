import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { Engine } from '../../src/engine/engine.js';
import { EngineMetrics } from '../../src/engine/metrics.js';
import type { KvPoolHandle } from '../../src/engine/onnx-model.js';
import { BLOCK_TOKENS, PrefixCache } from '../../src/engine/prefix-cache.js';
import { GREEDY } from '../../src/engine/sampler.js';
import type { GenerationRequest } from '../../src/engine/types.js';
import { engineTestBed } from '../helpers.js';

const bed = engineTestBed('tiny', 4, [400, 300, 7]);

const request = (question: string): GenerationRequest => ({
  messages: [{ role: 'user', content: [{ type: 'image', image: bed.image }, { type: 'text', text: question }] }],
  sampling: GREEDY, maxTokens: 24, ignoreEos: true, tools: ['crop_image_normalized'], maxToolCalls: 2, stop: [],
});

test('the tool system prompt is prefilled once: later requests reuse its KV and generate the same tokens', async () => {
  const registry = new Registry();
  const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  const cached = bed.engine({ maxModelLen: 2048, metrics: new EngineMetrics(registry) });
  const uncached = bed.engine({ maxModelLen: 2048, enablePrefixCaching: false });

  const logitsOf = async (engine: Engine, question: string) => {
    const logits: Float32Array[] = [];
    const r = await engine.generate(request(question), { onLogits: (l) => logits.push(Float32Array.from(l)) });
    return { r, logits };
  };
  const first = await logitsOf(cached, 'What colour is the sign?');
  assert.equal(first.r.usage.prompt_tokens_details?.cached_tokens, 0, 'nothing cached before the first request');
  const second = await logitsOf(cached, 'How many people are there?');
  const hit = second.r.usage.prompt_tokens_details!.cached_tokens;
  assert.ok(hit >= 8 * BLOCK_TOKENS && hit % BLOCK_TOKENS === 0, `cached ${hit} tokens`);
  const reference = await logitsOf(uncached, 'How many people are there?');
  assert.equal(reference.r.usage.prompt_tokens_details?.cached_tokens, 0);
  assert.deepEqual(second.r.tokenIds, reference.r.tokenIds);
  let worst = 0;
  second.logits.forEach((l, i) => l.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - reference.logits[i]![k]!)))));
  assert.ok(worst <= 1e-4, `max |logit difference| ${worst}`);
  console.log(`# prefix cache: ${hit} of ${second.r.usage.prompt_tokens} prompt tokens reused; max |logit difference| vs no cache ${worst.toExponential(2)}`);

  assert.equal(await metric('pixelreasoner_prefix_cache_hits_total'), hit);
  assert.ok((await metric('pixelreasoner_prefix_cache_queries_total')) >= 2 * hit);
  // vLLM counts cached prompt tokens as prompt tokens too.
  assert.equal(await metric('pixelreasoner_prompt_tokens_total'), first.r.usage.prompt_tokens + second.r.usage.prompt_tokens);
  assert.equal(cached.slots.free, cached.slots.total);
});

test('a prompt without cacheable text, and one that is a cached prefix exactly, still generate', async () => {
  const engine = bed.engine({ maxModelLen: 2048 });
  const text = (t: string): GenerationRequest => ({ messages: [{ role: 'user', content: t }], sampling: GREEDY, maxTokens: 6, ignoreEos: true, tools: [], maxToolCalls: 0, stop: [] });
  const long = 'word '.repeat(80);
  const a = await engine.generate(text(long));
  const b = await engine.generate(text(long));
  assert.ok(b.usage.prompt_tokens_details!.cached_tokens > 0);
  assert.ok(b.usage.prompt_tokens_details!.cached_tokens < b.usage.prompt_tokens, 'the last prompt token is always fed');
  assert.deepEqual(a.tokenIds, b.tokenIds);
  const short = await engine.generate(text('hi'));
  assert.equal(short.usage.prompt_tokens_details!.cached_tokens, 0);
  assert.equal(short.tokenIds.length, 6);
});

test('a cache smaller than two prompts evicts the least recently used blocks and still gives the uncached tokens', async () => {
  const small = bed.engine({ maxModelLen: 2048, prefixCacheBlocks: 12 });
  const uncached = bed.engine({ maxModelLen: 2048, enablePrefixCaching: false });
  const text = (t: string): GenerationRequest => ({ messages: [{ role: 'user', content: t }], sampling: GREEDY, maxTokens: 6, ignoreEos: true, tools: [], maxToolCalls: 0, stop: [] });
  // alpha is a chain of 9 blocks, beta of 8: storing beta evicts alpha's least recently used blocks, its head among them.
  const prompts = ['alpha '.repeat(60), 'alpha '.repeat(40), 'beta '.repeat(80), 'beta '.repeat(80), 'alpha '.repeat(60)];
  const hits: number[] = [];
  for (const p of prompts) {
    const [a, b] = [await small.generate(text(p)), await uncached.generate(text(p))];
    assert.deepEqual(a.tokenIds, b.tokenIds);
    hits.push(a.usage.prompt_tokens_details!.cached_tokens);
  }
  console.log(`# prefix cache of 12 blocks: cached tokens per request ${hits.join(', ')}`);
  assert.ok(hits[1]! > 0 && hits[3]! > 0, `hits ${hits}`);
  assert.equal(hits[4], 0, 'alpha\'s first block was evicted');
  assert.ok(hits.every((h) => h <= 12 * BLOCK_TOKENS));
});

test('a block store or restore that fails on the runtime is a miss, and the index names only blocks the runtime holds', async () => {
  // The runtime's block store, with one failure to inject at a time (the index is what is under test here).
  const held = new Map<number, number>();
  let failNext: 'save' | 'restore' | undefined;
  const pool = {
    async saveBlocks(_slot: number, saves: { block: number; at: number }[], _tokens: number, evicted: number[]) {
      if (failNext === 'save') throw ((failNext = undefined), new Error('runtime out of memory'));
      for (const id of evicted) held.delete(id);
      for (const s of saves) held.set(s.block, s.at);
    },
    async restoreBlocks(_slot: number, blocks: number[]) {
      if (failNext === 'restore') throw ((failNext = undefined), new Error('runtime gone'));
      for (const id of blocks) if (!held.has(id)) throw new Error(`no prefix-cache block ${id}`);
    },
  } as unknown as KvPoolHandle;
  const cache = new PrefixCache(pool, 4);
  const ids = (seed: number, n: number) => Array.from({ length: n }, (_, i) => seed * 1000 + i);
  const a = ids(1, 3 * BLOCK_TOKENS);

  failNext = 'save';
  await cache.store(0, a, a.length);
  assert.equal(await cache.restore(1, a, a.length), 0, 'blocks that were never saved are not offered');
  await cache.store(0, a, a.length);
  assert.equal(held.size, 3);
  failNext = 'restore';
  assert.equal(await cache.restore(1, a, a.length), 0);
  assert.equal(await cache.restore(1, a, a.length), 3 * BLOCK_TOKENS);

  // A failed store that evicted blocks frees them with the next store instead of leaking them on the runtime.
  const b = ids(2, 3 * BLOCK_TOKENS);
  failNext = 'save';
  await cache.store(0, b, b.length);
  await cache.store(0, ids(3, BLOCK_TOKENS), BLOCK_TOKENS);
  assert.ok(held.size <= 4, `${held.size} blocks held for an index of 4`);
  assert.equal(await cache.restore(1, b, b.length), 0);
});
