import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { GREEDY } from '../../src/engine/sampler.js';
import type { GenerationRequest } from '../../src/engine/types.js';
import { engineTestBed, until } from '../helpers.js';

/** The engine's limits and cancellations at their boundaries, each pinned to the rule it checks. */
const bed = engineTestBed('micro', 7, [448, 336, 7]);

const CALL = '\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.2, 0.2, 0.6, 0.7], "target_image": 1}}\n</tool_call>';
const engine = (opts: Partial<ConstructorParameters<typeof Engine>[3]> = {}) => bed.engine({ maxModelLen: 2048, maxNumSeqs: 4, ...opts });
const request = (over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  messages: [{ role: 'user', content: [{ type: 'image', image: bed.image }, { type: 'text', text: 'What is there?' }] }],
  sampling: GREEDY, maxTokens: 60, tools: ['crop_image_normalized'], maxToolCalls: 4, stop: [], ...over,
});

/** Forces the generated tokens: a tool call at each of `at`, a plain filler token elsewhere (a random model's own calls cannot interfere). */
function forcedCalls(at: number[]): (i: number) => number {
  const call = bed.tokenizer.encode(CALL);
  const filler = bed.tokenizer.encode(' ok')[0]!;
  const forced = new Map<number, number>();
  for (const start of at) call.forEach((id, k) => forced.set(start + k, id));
  return (i) => forced.get(i) ?? filler;
}

/** Occupies one slot with a request that only ends when released (resolves once it is streaming). */
async function holdSlot(e: Engine): Promise<{ release: () => Promise<unknown> }> {
  const hold = new AbortController();
  let streaming!: () => void;
  const started = new Promise<void>((r) => (streaming = r));
  const pending = e.generate(request({ maxTokens: 5000, ignoreEos: true, tools: [] }), { signal: hold.signal, onEvent: () => streaming() });
  await started;
  return { release: () => (hold.abort(), pending) };
}

test('DESIGN.md §4 limits: a call beyond max_tool_calls ends the request with finish_reason tool_limit, unexecuted', async () => {
  const r = await engine().generate(request({ maxToolCalls: 1, maxTokens: 200 }), { overrideToken: forcedCalls([2, 60]) });
  assert.equal(r.finishReason, 'tool_limit');
  assert.equal(r.steps.length, 1, 'only the first call ran');
  assert.ok(r.steps[0]!.ok);
});

test('a call that ends on the last token max_tokens allows ends the request as length, unexecuted, with max_tokens generated', async () => {
  const callTokens = bed.tokenizer.encode(CALL).length;
  const r = await engine().generate(request({ maxTokens: 3 + callTokens }), { overrideToken: forcedCalls([3]) });
  assert.equal(r.finishReason, 'length');
  assert.equal(r.tokenIds.length, 3 + callTokens);
  assert.equal(r.usage.completion_tokens, 3 + callTokens);
  assert.equal(r.steps.length, 0, 'no result turn: nothing could be generated after it');
});

test('the context limit reached by a tool result ends the request as length, with nothing generated after the call', async () => {
  const probe = await engine().generate(request({ maxTokens: 1 }));
  const callTokens = bed.tokenizer.encode(CALL).length;
  // Room for the prompt, the call and a few tokens, but not for the crop's result turn (dozens of image tokens).
  const maxModelLen = probe.promptTokenIds.length + 2 + callTokens + 5;
  let afterTool = 0;
  let toolDone = false;
  const r = await engine({ maxModelLen }).generate(request(), {
    overrideToken: forcedCalls([2]),
    onEvent: (e) => {
      if (e.type === 'tool') toolDone = true;
      else if (e.type === 'text' && toolDone) afterTool++;
    },
  });
  assert.equal(r.finishReason, 'length');
  assert.equal(r.steps.length, 1);
  assert.equal(afterTool, 0);
});

test('a client call whose result turn leaves no room ends every sample as length, with its step and nothing generated', async () => {
  const withCall = request({ messages: [...request().messages, { role: 'assistant', content: `I need a closer look.${CALL}` }], maxTokens: 1 });
  const probe = await engine().generate(withCall);
  assert.ok(probe.usage.prompt_tokens > probe.promptTokenIds.length + 5, 'the result turn adds tokens after the prompt');
  const e = engine({ maxModelLen: probe.promptTokenIds.length + 5 });
  const results = await e.generateMany(withCall, 2);
  for (const r of results) {
    assert.equal(r.finishReason, 'length');
    assert.equal(r.steps.length, 1);
    assert.ok(r.steps[0]!.ok);
    assert.equal(r.tokenIds.length, 0);
  }
  assert.equal(e.slots.free, 4);
});

test('aborting a request paused in its tool ends it as abort and frees its slot', async () => {
  const e = engine();
  const abort = new AbortController();
  let release!: () => void;
  const inTool = new Promise<void>((r) => (release = r));
  const pending = e.generate(request(), { signal: abort.signal, overrideToken: forcedCalls([2]), beforeTool: () => { release(); return new Promise(() => {}); } });
  await inTool;
  assert.equal(e.counts().paused, 1);
  abort.abort();
  const r = await pending;
  assert.equal(r.finishReason, 'abort');
  await until(() => e.counts().paused === 0);
  assert.equal(e.slots.free, 4);
});

test('aborting a request still queued for a slot ends it as abort without running it', async () => {
  const e = engine({ maxNumSeqs: 1 });
  const held = await holdSlot(e);
  const abort = new AbortController();
  const queued = e.generate(request({ tools: [] }), { signal: abort.signal });
  await until(() => e.counts().waiting === 1);
  abort.abort();
  const r = await queued;
  assert.equal(r.finishReason, 'abort');
  assert.equal(r.tokenIds.length, 0, 'the queued request generated tokens');
  await held.release();
  assert.deepEqual(e.counts(), { running: 0, waiting: 0, paused: 0 });
});

test('an n > 1 request waits for as many free slots as samples, then runs them together', async () => {
  const e = engine({ maxNumSeqs: 3 });
  const held = await holdSlot(e);
  // Two slots are free, the group needs three: it waits whole, and starts once the first request ends.
  const group = e.generateMany(request({ tools: [], maxTokens: 6, ignoreEos: true, sampling: { ...GREEDY, temperature: 1, seed: 3 } }), 3);
  await until(() => e.counts().waiting === 3);
  assert.equal(e.counts().running, 1);
  await held.release();
  const results = await group;
  assert.deepEqual(results.map((r) => r.tokenIds.length), [6, 6, 6]);
  assert.equal(e.slots.free, 3);
});

test('an n larger than the engine\'s slots is refused at once (it could never be admitted whole)', async () => {
  const e = engine({ maxNumSeqs: 2 });
  await assert.rejects(e.generateMany(request({ tools: [] }), 3), /n = 3 samples need 3 sequence slots at once; this server has 2/);
  assert.deepEqual(e.counts(), { running: 0, waiting: 0, paused: 0 });
});

test('§4 "target_image counts crops included": a second call can crop the crop the engine made in the first step', async () => {
  const second = '\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.25, 0.25, 0.75, 0.75], "target_image": 2}}\n</tool_call>';
  const call = bed.tokenizer.encode(CALL);
  const next = bed.tokenizer.encode(second);
  const filler = bed.tokenizer.encode(' ok')[0]!;
  const forced = new Map<number, number>();
  call.forEach((id, k) => forced.set(2 + k, id));
  next.forEach((id, k) => forced.set(2 + call.length + 5 + k, id));
  const r = await engine().generate(request({ maxTokens: 2 + call.length + 5 + next.length + 3 }), { overrideToken: (i) => forced.get(i) ?? filler });
  assert.equal(r.steps.length, 2);
  assert.ok(r.steps.every((s) => s.ok), JSON.stringify(r.steps.map((s) => s.error)));
  // Image 2 is the first crop: the second box is in its pixels (the first crop's size, not the original's 448x336).
  const [w1, h1] = [r.steps[0]!.box![2] - r.steps[0]!.box![0], r.steps[0]!.box![3] - r.steps[0]!.box![1]];
  assert.equal(r.steps[1]!.target_image, 2);
  assert.deepEqual(r.steps[1]!.box, [Math.round(0.15 * w1), Math.round(0.15 * h1), Math.round(0.85 * w1), Math.round(0.85 * h1)]);
});
