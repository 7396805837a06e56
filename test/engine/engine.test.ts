import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { GREEDY } from '../../src/engine/sampler.js';
import type { GenerationRequest } from '../../src/engine/types.js';
import { engineTestBed } from '../helpers.js';

const bed = engineTestBed('micro', 11, [300, 220, 3]);

/** Long enough to be running still when the image request arrives on any machine; it fails long before its end. */
const textRequest: GenerationRequest = {
  messages: [{ role: 'user', content: 'Count slowly.' }], sampling: GREEDY, maxTokens: 4000, ignoreEos: true, tools: [], maxToolCalls: 0, stop: [],
};
const imageRequest = (): GenerationRequest => ({
  messages: [{ role: 'user', content: [{ type: 'image', image: bed.image }, { type: 'text', text: 'What is there?' }] }],
  sampling: GREEDY, maxTokens: 16, ignoreEos: true, tools: ['crop_image_normalized'], maxToolCalls: 0, stop: [],
});

test('a step that fails while a prompt prefills fails its requests, leaves no unhandled rejection and caches nothing of the freed slot', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    // Small chunks: the image request's prompt (tool system prompt first, the cacheable part) takes several steps.
    const engine = bed.engine({ maxModelLen: 4096, maxNumBatchedTokens: 64 });
    let second: Promise<unknown> | undefined;
    // The running request's token hook throws in the step that plans the second request's first prompt chunk.
    const first = engine.generate(textRequest, {
      overrideToken: (i) => {
        if (i === 1) second = engine.generate(imageRequest());
        if (second && engine.counts().running === 2) throw new Error('hook failed');
        return undefined;
      },
    });
    await assert.rejects(first, /hook failed/);
    await assert.rejects(second!, /hook failed/);
    assert.deepEqual(engine.slots, { total: engine.slots.total, free: engine.slots.total });

    // The same engine serves again, and what its prefix cache holds gives the uncached logits.
    const logitsOf = async (e: Engine) => {
      const logits: Float32Array[] = [];
      const r = await e.generate(imageRequest(), { onLogits: (l) => logits.push(Float32Array.from(l)) });
      return { r, logits };
    };
    const again = await logitsOf(engine);
    const reference = await logitsOf(bed.engine({ maxModelLen: 2048, enablePrefixCaching: false }));
    assert.deepEqual(again.r.tokenIds, reference.r.tokenIds);
    let worst = 0;
    again.logits.forEach((l, i) => l.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - reference.logits[i]![k]!)))));
    assert.ok(worst <= 1e-4, `max |logit difference| ${worst} (cached ${again.r.usage.prompt_tokens_details?.cached_tokens} tokens)`);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
