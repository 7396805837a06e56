import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import OpenAI from 'openai';
import { dataUrl, testImagePng } from '../test/helpers.js';
import { requireTool, startCli, waitReady } from './helpers.js';

test('serve with the default model answers the openai client, then exits 0 on SIGTERM', async () => {
  const { url, proc } = await startCli(['--default-max-tokens', '8']);
  await waitReady(url);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  const r = await client.chat.completions.create({
    model: models.data[0]!.id,
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl(await testImagePng(500, 400)) } }, { type: 'text', text: 'What is this?' }] }],
  });
  assert.ok(r.choices[0]!.finish_reason);
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  proc.kill('SIGTERM');
  assert.equal(await exit, 0);
});

test('SIGTERM during 8 streaming requests: all 8 complete, then the process exits 0', async () => {
  const { url, proc } = await startCli([]);
  await waitReady(url);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let started = 0;
  let signalled = false;
  const streams = Array.from({ length: 8 }, async (_, i) => {
    const stream = await client.chat.completions.create({
      // Without the tool loop: the trained default model would answer with a crop call (finish tool_limit), and this test is about shutdown.
      model: 'any', messages: [{ role: 'user', content: `Tell a long story ${i}.` }], max_tokens: 300, stream: true, temperature: 0, ignore_eos: true,
      pixel_reasoning: { enabled: false },
    } as never) as unknown as AsyncIterable<OpenAI.Chat.ChatCompletionChunk>;
    let finish: string | null = null;
    let text = '';
    for await (const chunk of stream) {
      if (!signalled && ++started >= 8 * 3) {
        signalled = true;
        proc.kill('SIGTERM');
      }
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    return { finish, text };
  });
  const results = await Promise.all(streams);
  assert.ok(signalled, 'SIGTERM was sent while streams were running');
  for (const r of results) assert.equal(r.finish, 'length');
  assert.equal(await exit, 0);
});

test('promtool check metrics accepts /metrics', async () => {
  const promtool = requireTool('promtool', 'prometheus');
  const { url, proc } = await startCli([]);
  try {
    await waitReady(url);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
    await client.chat.completions.create({ model: 'any', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    const text = await (await fetch(`${url}/metrics`)).text();
    const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  } finally {
    proc.kill('SIGKILL');
  }
});
