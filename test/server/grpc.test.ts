import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import sharp from 'sharp';
import type { RunningServer } from '../../src/server/server.js';
import { startTestServer, testImagePng, until } from '../helpers.js';

let server: RunningServer;
let client: any;
let health: any;
let image: Buffer;

before(async () => {
  server = await startTestServer({ grpcPort: 0 });
  const def = protoLoader.loadSync(['pixelreasoner/v1/reasoning.proto', 'grpc/health/v1/health.proto'], {
    keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [join(import.meta.dirname, '../../proto')],
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  client = new pkg.pixelreasoner.v1.PixelReasoner(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  health = new pkg.grpc.health.v1.Health(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  image = await testImagePng(800, 600, 3);
});
after(async () => {
  client.close();
  health.close();
  await server.close();
});

const request = (extra: Record<string, unknown> = {}) => ({
  messages: [
    { role: 'user', content: [{ image: { data: image } }, { text: 'What is in the corner?' }] },
    { role: 'assistant', content: [{ text: '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.5, 0.5, 0.7, 0.7], "target_image": 1}}\n</tool_call>' }] },
  ],
  sampling: { temperature: 0, max_tokens: 6 },
  ...extra,
});

function collect(req: unknown, deadlineMs?: number): Promise<{ steps: any[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const steps: any[] = [];
    const call = client.StreamReasoning(req, deadlineMs ? { deadline: Date.now() + deadlineMs } : {}) as grpc.ClientReadableStream<any>;
    call.on('data', (m) => steps.push(m));
    call.on('error', (error: grpc.ServiceError) => resolve({ steps, error }));
    call.on('end', () => resolve({ steps }));
  });
}

test('StreamReasoning emits the steps in order: tool call, tool result with box and thumbnail, text, final, usage', async () => {
  const { steps, error } = await collect(request());
  assert.equal(error, undefined);
  const kinds = steps.map((s) => s.step);
  assert.equal(kinds[0], 'tool_call');
  assert.equal(kinds[1], 'tool_result');
  assert.deepEqual(kinds.slice(-2), ['final', 'usage']);
  assert.ok(kinds.slice(2, -2).every((k) => k === 'text'));
  const result = steps[1].tool_result;
  assert.deepEqual(result.box, { x1: 320, y1: 240, x2: 640, y2: 480 });
  const thumb = await sharp(result.thumbnails_jpeg[0]).metadata();
  assert.equal(thumb.format, 'jpeg');
  assert.ok(thumb.width! <= 160);
  assert.equal(steps.at(-2).final.finish_reason, 'length');
  assert.ok(steps.at(-1).usage.prompt_tokens > 0);
});

test('Reason returns the whole result; health reports SERVING; bad input is INVALID_ARGUMENT', async () => {
  const r: any = await new Promise((resolve, reject) => client.Reason(request(), (e: unknown, v: unknown) => (e ? reject(e) : resolve(v))));
  assert.equal(r.tool_results.length, 1);
  assert.equal(r.tool_calls[0].name, 'crop_image_normalized');
  assert.ok(r.usage.completion_tokens > 0);
  const h: any = await new Promise((resolve, reject) => health.Check({ service: 'pixelreasoner.v1.PixelReasoner' }, (e: unknown, v: unknown) => (e ? reject(e) : resolve(v))));
  assert.equal(h.status, 'SERVING');
  const bad = await collect({ messages: [{ role: 'user', content: [{ image: { data: Buffer.from('not an image') } }] }] });
  assert.equal(bad.error?.code, grpc.status.INVALID_ARGUMENT);
  const badTemp = await collect({ ...request(), sampling: { temperature: 9 } });
  assert.equal(badTemp.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(badTemp.error!.details, /temperature/);
});

test('a client that cancels mid-stream frees its engine slot', async () => {
  const engine = server.model().engine;
  const call = client.StreamReasoning({ messages: [{ role: 'user', content: [{ text: 'Tell a long story.' }] }], sampling: { max_tokens: 3000, ignore_eos: true } }) as grpc.ClientReadableStream<any>;
  let seen = 0;
  await new Promise<void>((resolve) => call.on('data', () => { if (++seen === 3) resolve(); }));
  assert.equal(engine.counts().running, 1);
  call.on('error', () => {});
  call.cancel();
  await until(() => engine.counts().running === 0);
  assert.equal(engine.slots.free, engine.slots.total);
});
