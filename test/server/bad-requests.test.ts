import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import { dataUrl, startTestServer, testImagePng } from '../helpers.js';
import { pngBomb } from './png-bomb.js';

let server: RunningServer;
let image: string;
before(async () => {
  server = await startTestServer({ maxBodyBytes: 1024 * 1024 });
  image = dataUrl(await testImagePng(64, 48));
});
after(() => server.close());

async function post(body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, json: (await res.json()) as { error?: { message: string; type: string; param: string | null; code: string } } };
}

const withImage = (url: string) => JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'hi' }] }], max_tokens: 2 });

function assertError(r: { status: number; json: { error?: unknown } }, status: number, code: string, param?: string | null) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  const e = r.json.error as { message: string; type: string; param: string | null; code: string };
  assert.ok(e, 'body must be {"error": {...}}');
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(e.code, code);
  assert.equal(e.type, status >= 500 ? 'server_error' : 'invalid_request_error');
  assert.ok(e.message.length > 0);
  if (param !== undefined) assert.equal(e.param, param);
}

test('malformed JSON -> 400', async () => assertError(await post('{"messages": [}'), 400, 'invalid_json'));
test('missing messages -> 400 naming the param', async () => assertError(await post('{"model": "x"}'), 400, 'invalid_value', 'messages'));
test('wrong content part type -> 400', async () =>
  assertError(await post(JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'audio', audio: 'x' }] }] })), 400, 'invalid_value', 'messages.0.content'));
test('wrong value type -> 400 naming the param', async () =>
  assertError(await post(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], temperature: 'hot' })), 400, 'invalid_value', 'temperature'));
test('data: URL that is not an image -> 400', async () =>
  assertError(await post(withImage(`data:text/plain;base64,${Buffer.from('hello').toString('base64')}`)), 400, 'invalid_image_url', 'messages.0.content.0.image_url'));
test('http URL without an allow-list -> 400', async () => assertError(await post(withImage('http://example.com/cat.png')), 400, 'media_url_not_allowed'));
test('corrupt PNG -> 422', async () => {
  const png = await testImagePng(32, 32);
  const corrupt = Buffer.concat([png.subarray(0, 40), Buffer.alloc(200, 7)]);
  assertError(await post(withImage(dataUrl(corrupt))), 422, 'invalid_image', 'messages.0.content.0.image_url');
});
test('decompression bomb (tiny PNG declaring 50000x50000) -> 413 without decoding it', async () => {
  const bomb = pngBomb();
  assert.ok(bomb.length < 2000);
  const res = await post(withImage(dataUrl(bomb)));
  assertError(res, 413, 'image_too_large');
  // Refused from the header's dimensions: the message names the declared size, which only the header gives.
  assert.match(res.json.error!.message, /50000x50000/);
});
test('body over the size limit -> 413', async () => assertError(await post(JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] })), 413, 'request_too_large'));
test('too many images -> 400', async () => {
  const content = Array.from({ length: 9 }, () => ({ type: 'image_url', image_url: { url: image } }));
  assertError(await post(JSON.stringify({ messages: [{ role: 'user', content }] })), 400, 'too_many_images', 'messages');
});
test('unknown route -> 404 in the same shape', async () => {
  const res = await fetch(`${server.url}/v1/nope`);
  assert.equal(res.status, 404);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'not_found');
});

test('after all the bad requests, a valid one still succeeds', async () => {
  const r = await post(withImage(image));
  assert.equal(r.status, 200);
  assert.equal((r.json as unknown as { object: string }).object, 'chat.completion');
});
