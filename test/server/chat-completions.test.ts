import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import type { RunningServer } from '../../src/server/server.js';
import { dataUrl, startTestServer, testImagePng } from '../helpers.js';

let server: RunningServer;
let client: OpenAI;
let image: string;

before(async () => {
  server = await startTestServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  image = dataUrl(await testImagePng(800, 600, 5));
});
after(() => server.close());

const question = (): OpenAI.Chat.ChatCompletionMessageParam[] => [
  { role: 'user', content: [{ type: 'image_url', image_url: { url: image } }, { type: 'text', text: 'What is in the image?' }] },
];

test('openai client: non-streaming image + question', async () => {
  const r = await client.chat.completions.create({ model: server.model().name, messages: question(), max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, server.model().name);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0]!;
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length', 'tool_limit'].includes(c.finish_reason as string));
  assert.ok(r.usage!.prompt_tokens > 40, 'image tokens are counted in the prompt');
  assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
  assert.ok(Array.isArray((c as unknown as { pixel_reasoning: { steps: unknown[] } }).pixel_reasoning.steps));
});

test('openai client: streaming yields role, content deltas, finish_reason and usage', async () => {
  const stream = await client.chat.completions.create({
    model: server.model().name, messages: question(), max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role: string | undefined;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      role ??= c.delta.role;
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  assert.equal(role, 'assistant');
  assert.ok(finish);
  assert.ok(usage && usage.completion_tokens > 0);
  const whole = await client.chat.completions.create({ model: server.model().name, messages: question(), max_tokens: 12, temperature: 0 });
  const c = whole.choices[0]!.message as { content: string; reasoning_content?: string | null };
  assert.equal(text, [c.reasoning_content, c.content].filter((x) => x != null).join(''), 'streamed text equals the non-streamed turns');
});

test('/v1/models lists the served model; /health answers; responses carry x-request-id', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [server.model().name]);
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
  const res = await fetch(`${server.url}/v1/models`, { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(res.headers.get('x-request-id'), 'abc-123');
});

const call = (name: string, args: string) => `<tool_call>\n{"name": "${name}", "arguments": ${args}}\n</tool_call>`;

test('invalid tool calls from a continued assistant message: exact error turn, still 200', async () => {
  const small = dataUrl(await testImagePng(60, 60, 1));
  const cases: [string, string, string[] | undefined][] = [
    ['<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1,\n</tool_call>', 'Invalid tool call: the content of <tool_call></tool_call> is not valid JSON', undefined],
    [call('rotate_image', '{"angle": 90}'), 'Unknown tool "rotate_image". Available tools: crop_image_normalized.', undefined],
    [call('crop_image_normalized', '{"bbox_2d": [900, 700, 1000, 800], "target_image": 1}'), 'The bounding box [900,700,1000,800] is outside the image (size 800x600).', undefined],
    [call('crop_image_normalized', '{"bbox_2d": [0.4, 0.4, 0.45, 0.45], "target_image": 2}'), 'Cropped image is too small: 15x15', undefined],
    [call('crop_image_normalized', '{"bbox_2d": [0.1, 0.1, 0.3, 0.3], "target_image": 3}'), 'Invalid target_image 3: valid images are 1 to 2.', undefined],
    [call('select_frames', '{"target_frames": [1, 2]}'), 'You attempted to select frames from an **image**, but this operation is only designed for analyzing videos. Think again.', ['crop_image_normalized', 'select_frames']],
  ];
  for (const [assistant, error, tools] of cases) {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { role: 'user', content: [{ type: 'image_url', image_url: { url: image } }, { type: 'image_url', image_url: { url: small } }, { type: 'text', text: 'Look closer.' }] },
          { role: 'assistant', content: assistant },
        ],
        max_tokens: 3,
        temperature: 0,
        ...(tools ? { pixel_reasoning: { tools } } : {}),
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { choices: { pixel_reasoning: { steps: { ok: boolean; error: string; result_text: string }[] } }[] };
    const step = body.choices[0]!.pixel_reasoning.steps[0]!;
    assert.equal(step.ok, false);
    assert.ok(step.error.startsWith(error), `${step.error} should start with ${error}`);
    assert.equal(step.result_text, `\nExecution error:\n${step.error}\n`);
  }
});

test('a valid crop from a continued message reports the box in original pixels', async () => {
  const r = await client.chat.completions.create({
    model: server.model().name,
    messages: [...question(), { role: 'assistant', content: call('crop_image_normalized', '{"bbox_2d": [0.5, 0.5, 0.7, 0.7], "target_image": 1}') }],
    max_tokens: 3,
    temperature: 0,
  });
  const step = (r.choices[0] as unknown as { pixel_reasoning: { steps: { box: number[]; ok: boolean; name: string }[] } }).pixel_reasoning.steps[0]!;
  assert.equal(step.ok, true);
  assert.equal(step.name, 'crop_image_normalized');
  assert.deepEqual(step.box, [320, 240, 640, 480]);
});

test('a video given as frames: select_frames works and more than 8 frames is an error turn with 200', async () => {
  const frames = await Promise.all(Array.from({ length: 16 }, async (_, i) => dataUrl(await testImagePng(96, 64, i))));
  const ask = async (target: number[]) => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { role: 'user', content: [{ type: 'video', video: frames }, { type: 'text', text: 'Which frame is red?' }] },
          { role: 'assistant', content: call('select_frames', JSON.stringify({ target_frames: target })) },
        ],
        max_tokens: 2,
        temperature: 0,
      }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { choices: { pixel_reasoning: { steps: { ok: boolean; frames?: number[]; result_text: string }[] } }[] }).choices[0]!.pixel_reasoning.steps[0]!;
  };
  const ok = await ask([3, 7]);
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.frames, [3, 7]);
  const many = await ask([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(many.result_text, '\nExecution error:\nToo many frames: you selected 9, but at most 8 frames can be selected at once.\n');
});
