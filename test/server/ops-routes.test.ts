import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestServer } from '../helpers.js';

test('/ready, /tokenize and /detokenize behave like vLLM', async () => {
  const server = await startTestServer();
  try {
    assert.equal((await fetch(`${server.url}/ready`)).status, 200);
    const post = (path: string, body: unknown) => fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const t = (await (await post('/tokenize', { prompt: 'Zoom into the red circle.' })).json()) as { count: number; tokens: number[]; max_model_len: number };
    assert.equal(t.count, t.tokens.length);
    assert.ok(t.max_model_len > 0);
    const d = (await (await post('/detokenize', { tokens: t.tokens })).json()) as { prompt: string };
    assert.equal(d.prompt, 'Zoom into the red circle.');
    const chat = (await (await post('/tokenize', { messages: [{ role: 'user', content: 'hi' }] })).json()) as { count: number };
    assert.ok(chat.count > t.count / 3);
    const bad = await post('/detokenize', { tokens: ['x'] });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { param: string } }).error.param, 'tokens.0');
  } finally {
    await server.close();
  }
});

test('admin routes are absent without an admin token and answer 401 without it when configured', async () => {
  const off = await startTestServer();
  try {
    assert.equal((await fetch(`${off.url}/admin/v1/models`)).status, 404);
  } finally {
    await off.close();
  }
  const on = await startTestServer({ adminToken: 'sekret' });
  try {
    const no = await fetch(`${on.url}/admin/v1/models`);
    assert.equal(no.status, 401);
    assert.equal(((await no.json()) as { error: { type: string } }).error.type, 'authentication_error');
    assert.equal((await fetch(`${on.url}/admin/v1/models`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const yes = await fetch(`${on.url}/admin/v1/models`, { headers: { authorization: 'Bearer sekret' } });
    assert.equal(yes.status, 200);
  } finally {
    await on.close();
  }
});

test('API keys guard /v1/* when configured', async () => {
  const server = await startTestServer({ apiKeys: ['k1'] });
  try {
    assert.equal((await fetch(`${server.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer k1' } })).status, 200);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  } finally {
    await server.close();
  }
});
