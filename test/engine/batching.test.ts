import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { OnnxModel } from '../../src/engine/onnx-model.js';
import { GREEDY } from '../../src/engine/sampler.js';
import type { ChatMessage, GenerateOptions, GenerationRequest, GenerationResult } from '../../src/engine/types.js';
import { ChatTokenizer } from '../../src/model/chat-tokenizer.js';
import { loadModelFiles, type ModelFiles } from '../../src/model/model-dir.js';
import { decodeImage, type RgbImage } from '../../src/tools/image.js';
import { testImagePng, testModel, until } from '../helpers.js';

let files: ModelFiles;
let fast: OnnxModel;
let standard: OnnxModel;
let tokenizer: ChatTokenizer;
const images: RgbImage[] = [];
const SIZES: [number, number][] = [[640, 480], [300, 900], [1600, 1000], [200, 200]];

before(async () => {
  files = await loadModelFiles(await testModel('tiny', 4));
  fast = await OnnxModel.load(files, { threads: 2 });
  standard = await OnnxModel.load(files, { threads: 2, forceStandard: true });
  tokenizer = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  for (const [w, h] of SIZES) images.push(await decodeImage(await testImagePng(w, h, w), { maxPixels: 1e8 }));
});
after(async () => {
  await fast.release();
  await standard.release();
});

const engineOf = (runner: OnnxModel, maxNumSeqs = 16) => new Engine(runner, tokenizer, files.config, { maxModelLen: 2048, maxNumSeqs, maxNumBatchedTokens: 256 });
const CALL = '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.2, 0.2, 0.6, 0.7], "target_image": 1}}\n</tool_call>';

function request(i: number): GenerationRequest {
  const messages: ChatMessage[] = [{ role: 'user', content: [{ type: 'image', image: images[i % images.length]! }, { type: 'text', text: `Question ${i}: what is in the image?` }] }];
  if (i % 3 === 0) messages.push({ role: 'assistant', content: `Let me zoom in.\n${CALL}` });
  return { messages, sampling: GREEDY, maxTokens: 8 + (i % 5) * 6, tools: ['crop_image_normalized'], maxToolCalls: 2, stop: [] };
}

test('batching changes no output: 16 concurrent greedy requests equal each run alone', async () => {
  const engine = engineOf(fast);
  const alone: number[][] = [];
  for (let i = 0; i < 16; i++) alone.push((await engine.generate(request(i))).tokenIds);
  const together = await Promise.all(Array.from({ length: 16 }, (_, i) => engine.generate(request(i))));
  together.forEach((r, i) => assert.deepEqual(r.tokenIds, alone[i], `request ${i} differs when batched`));
  assert.ok(together.some((r) => r.steps.length > 0), 'some requests ran a tool');
  assert.deepEqual(engine.counts(), { running: 0, waiting: 0, paused: 0 });
  assert.equal(engine.slots.free, 16);
});

/**
 * Greedy requests with calls forced mid-decode, calls past the tool limit, EOS, and one sampling request: on
 * four slots, slots freed by unforeseen finishes are reused while decode rows are in flight.
 */
function pipelinedCases(): { req: GenerationRequest; opts: GenerateOptions }[] {
  const call = tokenizer.encode(`\n${CALL}`);
  // A call forced from index `at` (the rest greedy): the call is found while the next decode row is already in flight.
  const callAt = (at: number) => (i: number) => (i >= at && i < at + call.length ? call[i - at] : undefined);
  const cases: { req: GenerationRequest; opts: GenerateOptions }[] = Array.from({ length: 10 }, (_, i) => ({
    req: { ...request(i + 1), messages: request(i + 1).messages.slice(0, 1), maxTokens: (i % 2 === 1 ? call.length + 20 : 12) + 3 * i, ignoreEos: i % 2 === 0, maxToolCalls: i % 4 === 1 ? 0 : 2 },
    opts: i % 2 === 1 ? { overrideToken: callAt(2 + i) } : {},
  }));
  // A sampling request cannot chain: while it runs, decodes go one at a time.
  cases.push({ req: { ...request(5), tools: [], maxTokens: 10, sampling: { ...GREEDY, temperature: 0.9, seed: 3 } }, opts: {} });
  return cases;
}

test('pipelined decoding changes no output: tool calls and tool limits mid-decode, reused slots, and a sampling request among greedy ones', async () => {
  const cases = pipelinedCases();
  const engine = engineOf(fast, 4);
  const alone: GenerationResult[] = [];
  for (const c of cases) alone.push(await engine.generate(c.req, c.opts));
  const together = await Promise.all(cases.map((c) => engine.generate(c.req, c.opts)));
  together.forEach((r, i) => {
    assert.deepEqual(r.tokenIds, alone[i]!.tokenIds, `request ${i} differs when batched`);
    assert.equal(r.finishReason, alone[i]!.finishReason);
  });
  assert.ok(together.some((r) => r.finishReason === 'tool_limit'), 'a call past the limit ended a request');
  assert.ok(together.some((r) => r.steps.some((s) => s.ok) && r.tokenIds.length > r.steps.length), 'a request paused in a tool and went on');
  assert.deepEqual(engine.counts(), { running: 0, waiting: 0, paused: 0 });
  assert.equal(engine.slots.free, 4);
});

test('a running greedy request decodes a token every step while other requests prefill, not every other step', async () => {
  const engine = engineOf(fast, 8);
  // The model's calls, in order: a prefill (several tokens a row) or a decode (one), and the slots it spans.
  const calls: { prefill: boolean; first: number; rows: number }[] = [];
  const runPooled = fast.runPooled.bind(fast);
  fast.runPooled = (pool, call) => (calls.push({ prefill: call.s > 1, first: call.first, rows: call.rows }), runPooled(pool, call));
  try {
    let running!: () => void;
    const started = new Promise<void>((r) => (running = r));
    const long = engine.generate(
      { ...request(2), messages: request(2).messages.slice(0, 1), maxTokens: 120, ignoreEos: true, tools: [] }, { onLogits: () => running() },
    );
    let longDone = false;
    void long.then(() => (longDone = true));
    await started;
    const from = calls.length;
    // Prompts with images: each takes a step or more of prefill (256 tokens a step here) while the first one decodes.
    await Promise.all([4, 5, 6, 7].map((i) => engine.generate({ ...request(i), maxTokens: 6, ignoreEos: true, tools: [] })));
    assert.equal(longDone, false, 'the first request ended before the others: the check below would not hold');
    const during = calls.slice(from);
    // A step's prefill may take several calls (chunks whose rows would pad too much): a run of them is one step.
    // The first request runs throughout (no EOS, no tools): every decode call while the others prefill and decode holds its row.
    const decodes = during.filter((c) => !c.prefill);
    assert.ok(during.filter((c) => c.prefill).length >= 4, 'the other requests prefilled');
    assert.ok(decodes.length >= 8, `${decodes.length} decode calls`);
    decodes.forEach((c, k) => assert.equal(c.first, 0, `decode call ${k} of ${decodes.length} left the running request out`));
    await long;
  } finally {
    fast.runPooled = runPooled;
  }
});

test('a decode posted with a prefill gives its tokens as it answers, not after the prefill', async () => {
  const engine = engineOf(fast, 8);
  // What happened, in order: a decoder call answered (decode or prefill), or request a or b got a token.
  const log: string[] = [];
  const runPooled = fast.runPooled.bind(fast);
  fast.runPooled = async (pool, call) => {
    const out = await runPooled(pool, call);
    log.push(call.s > 1 ? 'prefill' : 'decode');
    return out;
  };
  try {
    let running!: () => void;
    const started = new Promise<void>((r) => (running = r));
    let n = 0;
    const a = engine.generate(
      { ...request(2), messages: [{ role: 'user', content: 'Count.' }], maxTokens: 60, ignoreEos: true, tools: [] },
      { onLogits: () => (log.push('a'), ++n === 5 && running()) },
    );
    await started;
    // A text prompt of one prefill call (within the 256-token budget), while a decodes pipelined.
    const b = engine.generate({ ...request(2), messages: [{ role: 'user', content: 'Describe a cat. '.repeat(30) }], maxTokens: 2, tools: [] }, {
      onLogits: () => log.push('b'),
    });
    await Promise.all([a, b]);
    const prefill = log.lastIndexOf('prefill', log.indexOf('b'));
    const decode = log.lastIndexOf('decode', prefill);
    // The decode posted just before b's prefill answered first (the runtime runs calls in order): a's token from it
    // comes before the prefill's answer, not held back until b's first token.
    assert.ok(log.slice(prefill).includes('a'), 'a still decoding after b\'s prefill (else the check below holds either way)');
    assert.ok(log.slice(decode + 1, prefill).includes('a'), `around b's prefill: ${log.slice(Math.max(0, decode - 3), prefill + 3).join(' ')}`);
  } finally {
    fast.runPooled = runPooled;
  }
});

test('pipelined decoding gives the standard decoder\'s tokens without the shared embedding table (as a real-size model) and on the calling thread', async () => {
  // Without the table every decode row's token is embedded on the runtime; on the calling thread calls run in the order posted.
  const noTable = await OnnxModel.load(files, { threads: 2, embedTable: false });
  process.env.PIXELREASONER_ONNX_THREAD = '0';
  const local = await OnnxModel.load(files, { threads: 2 }).finally(() => delete process.env.PIXELREASONER_ONNX_THREAD);
  try {
    const cases = pipelinedCases();
    const reference: GenerationResult[] = [];
    for (const c of cases) reference.push(await engineOf(standard, 4).generate(c.req, c.opts));
    for (const [name, runner] of [['no embedding table', noTable], ['calling thread', local]] as const) {
      const engine = engineOf(runner, 4);
      const together = await Promise.all(cases.map((c) => engine.generate(c.req, c.opts)));
      together.forEach((r, i) => assert.deepEqual(r.tokenIds, reference[i]!.tokenIds, `${name}: request ${i} differs from the standard decoder`));
    }
  } finally {
    await noTable.release();
    await local.release();
  }
});

test('fast decoder logits equal the standard layout within 1e-4 over 200 tokens with two tool pauses', async () => {
  const callIds = tokenizer.encode(`\n${CALL}`);
  const forced = new Map<number, number>();
  for (const at of [40, 120]) callIds.forEach((id, k) => forced.set(at + k, id));
  // Every other token is forced too (plain text), so a random model's own tool call cannot add a third pause.
  const filler = tokenizer.encode(' ok')[0]!;
  for (let i = 0; i < 200; i++) if (!forced.has(i)) forced.set(i, filler);
  const run = async (runner: OnnxModel) => {
    const logits: Float32Array[] = [];
    const r = await engineOf(runner).generate(
      { ...request(1), maxTokens: 200, maxToolCalls: 4 },
      { onLogits: (l) => logits.push(Float32Array.from(l)), overrideToken: (i) => forced.get(i) },
    );
    return { r, logits };
  };
  const a = await run(fast);
  const b = await run(standard);
  assert.equal(a.r.steps.length, 2, 'two tool pauses');
  assert.ok(a.r.steps.every((s) => s.ok));
  assert.equal(a.logits.length, 200);
  assert.deepEqual(a.r.tokenIds, b.r.tokenIds);
  let maxDiff = 0;
  a.logits.forEach((l, i) => l.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - b.logits[i]![j]!)))));
  assert.ok(maxDiff <= 1e-4, `max abs logit difference ${maxDiff}`);
});

test('while one request is paused in a tool, the other streams keep receiving tokens (20 arrive before it returns)', async () => {
  const engine = engineOf(fast);
  // The tool returns only once the other requests have streamed 20 more tokens: if a tool pause
  // stalled the engine, they never would, and the test would time out instead of passing.
  let streamed = 0;
  let waiting: { count: number; release: () => void } | undefined;
  let streaming = 0;
  let allStreaming!: () => void;
  const started = new Promise<void>((r) => (allStreaming = r));
  const others = Array.from({ length: 4 }, (_, k) => {
    let first = true;
    return engine.generate({ ...request(k + 1), maxTokens: 600, ignoreEos: true, messages: request(k + 1).messages.slice(0, 1) }, {
      onEvent: (e) => {
        if (e.type !== 'text') return;
        streamed++;
        if (waiting && streamed >= waiting.count) waiting.release();
        if (first && (first = false, ++streaming === 4)) allStreaming();
      },
    });
  });
  await started;
  let duringTool = -1;
  const slow = engine.generate({ ...request(0), maxTokens: 4 }, {
    beforeTool: async () => {
      const at = streamed;
      await new Promise<void>((release) => (waiting = { count: at + 20, release }));
      duringTool = streamed - at;
    },
  });
  await Promise.all([slow, ...others]);
  assert.ok(duringTool >= 20, `the tool ran and ${duringTool} tokens streamed while it was paused`);
});

test('an aborted request stops streaming at once and frees its slot', async () => {
  const engine = engineOf(fast, 4);
  const abort = new AbortController();
  let generated = 0;
  let afterAbort = 0;
  const onEvent = (e: { type: string }) => {
    if (e.type !== 'text') return;
    if (abort.signal.aborted) afterAbort++;
    else if (++generated === 5) abort.abort();
  };
  const r = await engine.generate({ ...request(2), maxTokens: 500, ignoreEos: true }, { signal: abort.signal, onEvent });
  assert.equal(r.finishReason, 'abort');
  // Counted in streamed events, not tokens: a byte token is held back until its character completes.
  assert.ok(afterAbort <= 1, `${afterAbort} tokens streamed after abort`);
  assert.ok(r.tokenIds.length <= 8, `${r.tokenIds.length} tokens in all`);
  assert.equal(engine.slots.free, 4);
  assert.deepEqual(engine.counts(), { running: 0, waiting: 0, paused: 0 });
});

test('past maxWaiting the engine refuses new requests instead of queueing', async () => {
  const engine = new Engine(fast, tokenizer, files.config, { maxModelLen: 2048, maxNumSeqs: 1, maxWaiting: 1 });
  const first = engine.generate({ ...request(1), maxTokens: 1500, ignoreEos: true });
  const second = engine.generate({ ...request(2), maxTokens: 5 });
  await until(() => engine.counts().waiting >= 1);
  assert.deepEqual(engine.counts(), { running: 1, waiting: 1, paused: 0 });
  await assert.rejects(engine.generate({ ...request(3), messages: [{ role: 'user', content: 'hi' }], maxTokens: 5 }), /at capacity/);
  await Promise.all([first, second]);
});

test('n > 1 samples share one prompt prefill and each continues on its own', async () => {
  const { Registry } = await import('prom-client');
  const { EngineMetrics } = await import('../../src/engine/metrics.js');
  const registry = new Registry();
  const engine = new Engine(fast, tokenizer, files.config, { maxModelLen: 2048, maxNumSeqs: 8, metrics: new EngineMetrics(registry) });
  const prefilled = async () => (await registry.getSingleMetric('pixelreasoner_prompt_tokens_total')!.get()).values[0]?.value ?? 0;
  // No tools: a sampled random model can emit a call, whose error turn would be prefilled too.
  const sampled = { ...request(2), tools: [], maxTokens: 12, sampling: { ...GREEDY, temperature: 1, seed: 11 } };
  const [a, b, c] = await engine.generateMany(sampled, 3);
  const promptLen = a!.promptTokenIds.length;
  assert.equal(await prefilled(), promptLen, 'the prompt is prefilled once for three samples');
  assert.ok(new Set([a, b, c].map((r) => r!.tokenIds.join())).size > 1, 'samples differ');
  // Sample i uses seed + i: the second sample equals a single request with seed 12.
  const alone = await engine.generate({ ...sampled, sampling: { ...sampled.sampling, seed: 12 } });
  assert.deepEqual(b!.tokenIds, alone.tokenIds);
  const greedy = await engine.generateMany({ ...request(3), maxTokens: 10 }, 2);
  assert.deepEqual(greedy[0]!.tokenIds, greedy[1]!.tokenIds);
  assert.deepEqual(greedy[0]!.tokenIds, (await engine.generate({ ...request(3), maxTokens: 10 })).tokenIds);
  assert.equal(engine.slots.free, 8);
});
