import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { resolveEngineConfig } from '../../src/engine/engine-config.js';
import { Intake } from '../../src/engine/intake.js';
import { GREEDY } from '../../src/engine/sampler.js';
import { ToolLoop } from '../../src/engine/tool-loop.js';
import type { GenerateOptions, GenerationRequest } from '../../src/engine/types.js';
import { engineTestBed } from '../helpers.js';

const bed = engineTestBed('micro', 3, [640, 480, 3]);
const CALL = 'Closer.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.1, 0.5, 0.6], "target_image": 1}}\n</tool_call>';

const intakeOf = (intakeConcurrency: number) => new Intake(
  bed.tokenizer, bed.files.config, new ToolLoop(bed.tokenizer, bed.files.config), resolveEngineConfig({ maxModelLen: 4096, intakeConcurrency }),
);
const request = (assistant?: string): GenerationRequest => ({
  messages: [
    { role: 'user', content: [{ type: 'image', image: bed.image }, { type: 'text', text: 'What is there?' }] },
    ...(assistant ? [{ role: 'assistant' as const, content: assistant }] : []),
  ],
  sampling: GREEDY, maxTokens: 8, tools: ['crop_image_normalized'], maxToolCalls: 4, stop: [],
});

test('a call that ends the client\'s message runs at intake: its result turn follows the prompt in one pending chunk', async () => {
  const intake = intakeOf(2);
  const plain = await intake.prepare(request(), 1, () => ({}));
  const { first } = await intake.prepare(request(CALL), 1, () => ({}));
  assert.equal(first.steps.length, 1);
  assert.ok(first.steps[0]!.ok);
  assert.equal(first.pending.fed, 0);
  assert.equal(first.pending.ids.length, first.promptTokens, 'prompt and result turn are pending together');
  assert.ok(first.promptTokens > first.promptTokenIds.length, 'the result turn adds tokens after the prompt');
  assert.deepEqual(first.pending.visuals.map((v) => v.input.grid[0]), [1, 1], 'the image and the crop');
  assert.equal(first.turnIds.length, 2, 'a new assistant turn opens after the result');
  assert.equal(plain.first.steps.length, 0);
});

test('requests are prepared in arrival order, at most intakeConcurrency at once, their latency counted from arrival', async () => {
  const intake = intakeOf(1);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const order: string[] = [];
  const slow: GenerateOptions = { beforeTool: () => held };
  const a = intake.prepare(request(CALL), 1, () => slow).then(() => order.push('a'));
  const b = intake.prepare(request(), 1, () => ({})).then((r) => (order.push('b'), r));
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(order, [], 'the second request waits while the first is prepared');
  const releasedAt = performance.now();
  release();
  const [, second] = await Promise.all([a, b]);
  assert.deepEqual(order, ['a', 'b']);
  assert.ok(second.first.arrivedAt < releasedAt, 'latency metrics count the wait from the request\'s arrival');
});

test('each request is prepared on a turn of its own: a burst does not hold back messages and I/O until it is all prepared', async () => {
  const intake = intakeOf(1);
  const prepared: number[] = [];
  let preparedWhenMessaged = -1;
  const channel = new MessageChannel();
  channel.port2.on('message', () => (preparedWhenMessaged = prepared.length));
  // Small images resize inline and nothing else waits on I/O: without a turn between requests, the burst is one run of microtasks.
  const burst = Array.from({ length: 6 }, (_, i) => intake.prepare(request(CALL), 1, () => ({})).then(() => prepared.push(i)));
  channel.port1.postMessage('answer');
  await Promise.all(burst);
  channel.port1.close();
  assert.ok(preparedWhenMessaged >= 0, 'the message waited until the whole burst was prepared');
  assert.ok(preparedWhenMessaged < 6, `the message was handled after ${preparedWhenMessaged} of 6 requests`);
});
