import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveConfig } from '../../src/server/config.js';
import { startTestServer } from '../helpers.js';

test('configuration precedence: flags > environment > config file > defaults', () => {
  const file = join(tmpdir(), `prs-config-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ port: 9001, maxNumSeqs: 4, logLevel: 'warn', apiKeys: ['from-file'] }));
  const c = resolveConfig({ port: '9003' }, { PIXELREASONER_PORT: '9002', PIXELREASONER_MAX_NUM_SEQS: '8', PIXELREASONER_API_KEYS: 'a, b' }, file);
  assert.equal(c.port, 9003);
  assert.equal(c.maxNumSeqs, 8);
  assert.equal(c.logLevel, 'warn');
  assert.deepEqual(c.apiKeys, ['a', 'b']);
  assert.equal(c.grpcPort, 50051);
  assert.throws(() => resolveConfig({ port: 'eighty' }, {}), /port/);
});

test('a prompt over maxModelLen gets a 400 with the numbers, like vLLM', async () => {
  const server = await startTestServer({ maxModelLen: 64 });
  try {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'word '.repeat(200) }] }),
    });
    assert.equal(res.status, 400);
    const e = ((await res.json()) as { error: { code: string; message: string; param: string } }).error;
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, /maximum context length is 64 tokens\. However, your request has \d+ input tokens/);
  } finally {
    await server.close();
  }
});
