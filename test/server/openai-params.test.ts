import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import type { RunningServer } from '../../src/server/server.js';
import { dataUrl, startTestServer, testImagePng } from '../helpers.js';

let server: RunningServer;
let client: OpenAI;
let messages: OpenAI.Chat.ChatCompletionMessageParam[];

before(async () => {
  server = await startTestServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  messages = [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl(await testImagePng(320, 240, 9)) } }, { type: 'text', text: 'Describe it.' }] }];
});
after(() => server.close());

const model = () => server.model().name;

test('n=2 returns two choices; seed makes sampling reproducible', async () => {
  const a = await client.chat.completions.create({ model: model(), messages, n: 2, temperature: 1, seed: 5, max_tokens: 10 });
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1]);
  const b = await client.chat.completions.create({ model: model(), messages, n: 2, temperature: 1, seed: 5, max_tokens: 10 });
  assert.deepEqual(b.choices.map((c) => c.message.content), a.choices.map((c) => c.message.content));
  assert.notEqual(a.choices[0]!.message.content, a.choices[1]!.message.content);
});

test('stop strings end generation before the stop text', async () => {
  const free = await client.chat.completions.create({ model: model(), messages, temperature: 0, max_tokens: 24 });
  const text = free.choices[0]!.message.content!;
  const stop = text.slice(4, 6);
  assert.ok(stop.length === 2, 'needs some generated text');
  const stopped = await client.chat.completions.create({ model: model(), messages, temperature: 0, max_tokens: 24, stop: [stop] });
  assert.equal(stopped.choices[0]!.finish_reason, 'stop');
  assert.equal(stopped.choices[0]!.message.content, text.slice(0, text.indexOf(stop)));
});

test('logprobs and top_logprobs come back in OpenAI shape', async () => {
  const r = await client.chat.completions.create({ model: model(), messages, temperature: 0, max_tokens: 5, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0]!.logprobs!.content!;
  assert.equal(lp.length, r.usage!.completion_tokens);
  for (const t of lp) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0]!.logprob, t.logprob, 'greedy picks the top token');
    assert.ok(Array.isArray(t.bytes));
  }
});

test('streaming with include_usage, max_completion_tokens and penalties', async () => {
  const stream = await client.chat.completions.create({
    model: model(), messages, stream: true, stream_options: { include_usage: true }, max_completion_tokens: 7, presence_penalty: 0.5, frequency_penalty: 0.5, user: 'u1', temperature: 0,
  });
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const c of stream) usage = c.usage ?? usage;
  assert.ok(usage && usage.completion_tokens <= 7);
});

test('invalid values get a 400 naming the param; unknown fields are ignored', async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ temperature: 5 }, 'temperature'], [{ top_p: 0 }, 'top_p'], [{ n: 0 }, 'n'], [{ max_tokens: -1 }, 'max_tokens'],
    [{ top_logprobs: 50 }, 'top_logprobs'], [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'], [{ presence_penalty: 3 }, 'presence_penalty'],
    [{ seed: 1.5 }, 'seed'], [{ pixel_reasoning: { tools: ['rotate'] } }, 'pixel_reasoning.tools.0'],
  ];
  for (const [extra, param] of cases) {
    await assert.rejects(
      client.chat.completions.create({ model: model(), messages, max_tokens: 2, ...extra } as never),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && (e.error as { param: string }).param === param,
      `expected 400 for ${param}`,
    );
  }
  const ok = await client.chat.completions.create({ model: model(), messages, max_tokens: 2, some_future_field: true } as never);
  assert.equal(ok.object, 'chat.completion');
});

test('known OpenAI parameters we do not implement are refused naming the param', async () => {
  for (const [extra, param] of [
    [{ tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }, 'tools'],
    [{ response_format: { type: 'json_object' } }, 'response_format'],
    [{ logit_bias: { '1': 5 } }, 'logit_bias'],
  ] as [Record<string, unknown>, string][]) {
    await assert.rejects(
      client.chat.completions.create({ model: model(), messages, max_tokens: 2, ...extra } as never),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && (e.error as { param: string }).param.split('.')[0] === param,
      `expected 400 for ${param}`,
    );
  }
  const ok = await client.chat.completions.create({ model: model(), messages, max_tokens: 2, response_format: { type: 'text' } });
  assert.equal(ok.object, 'chat.completion');
});
