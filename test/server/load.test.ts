import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import { dataUrl, startTestServer, testImagePng, until } from '../helpers.js';

const gauge = async (server: RunningServer, name: string) => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} missing from /metrics`);
  return Number(m[1]);
};

/** A counter's value on /metrics (the full series name with its labels). */
const counter = async (server: RunningServer, series: string) => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
};

test('200 requests at concurrency 32: no errors, gauges back to 0, KV pool free, the crop counter equals the crops in the responses', async () => {
  const server = await startTestServer({ maxNumSeqs: 16 });
  try {
    const images = await Promise.all([[320, 240], [640, 480], [200, 500]].map(([w, h], i) => testImagePng(w!, h!, i).then((p) => dataUrl(p))));
    const body = (i: number) => JSON.stringify({
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: { url: images[i % 3] } }, { type: 'text', text: `Request ${i}` }] },
        ...(i % 4 === 0 ? [{ role: 'assistant', content: '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.1, 0.6, 0.6], "target_image": 1}}\n</tool_call>' }] : []),
      ],
      max_tokens: 6 + (i % 7),
      temperature: i % 2 ? 0.8 : 0,
      stream: i % 3 === 0,
    });
    // Successful crops seen in the responses (non-streamed: the steps list; streamed: one chunk per step).
    let okCrops = 0;
    const send = async (i: number) => {
      const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(i) });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      const steps: { name?: string; ok: boolean }[] = text.startsWith('data:')
        ? text.split('\n').filter((l) => l.startsWith('data: {')).flatMap((l) => JSON.parse(l.slice(6)).choices[0]?.pixel_reasoning?.step ?? [])
        : JSON.parse(text).choices[0].pixel_reasoning?.steps ?? [];
      okCrops += steps.filter((st) => st.ok && st.name === 'crop_image_normalized').length;
    };
    await Promise.all(Array.from({ length: 8 }, (_, i) => send(i))); // warm-up
    okCrops = 0;
    const before = await counter(server, 'pixelreasoner_tool_calls_total{tool="crop_image_normalized",outcome="ok"}');
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < 200) await send(next++);
    }));
    assert.equal(await gauge(server, 'pixelreasoner_num_requests_running'), 0);
    assert.equal(await gauge(server, 'pixelreasoner_num_requests_waiting'), 0);
    assert.equal(await gauge(server, 'pixelreasoner_num_requests_paused'), 0);
    assert.equal(await gauge(server, 'pixelreasoner_kv_cache_usage_perc'), 0);
    assert.equal(server.model().engine.slots.free, 16);
    // Every fourth request continues a crop call, so at least 50 crops ran; the counter counts each one the responses show.
    assert.ok(okCrops >= 50, `${okCrops} successful crops in the responses`);
    assert.equal(await counter(server, 'pixelreasoner_tool_calls_total{tool="crop_image_normalized",outcome="ok"}') - before, okCrops);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /pixelreasoner_time_to_first_token_seconds_count \d+/);
  } finally {
    await server.close();
  }
});

test('a client that disconnects mid-stream frees its slot', async () => {
  const server = await startTestServer({ maxNumSeqs: 4 });
  try {
    const abort = new AbortController();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: 2000, ignore_eos: true, stream: true }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    let chunks = 0;
    while (chunks < 3) {
      await reader.read();
      chunks++;
    }
    assert.equal(server.model().engine.counts().running, 1);
    abort.abort();
    // Waits for the slot to be freed (a hang fails on the runner's per-test timeout, not on a clock).
    await until(() => server.model().engine.counts().running === 0);
    assert.equal(server.model().engine.slots.free, 4);
  } finally {
    await server.close();
  }
});

test('past maxWaiting queued requests the server answers 429 with Retry-After', async () => {
  const server = await startTestServer({ maxNumSeqs: 1, maxWaiting: 0 });
  try {
    const hold = new AbortController();
    const long = fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4000, ignore_eos: true, stream: true }),
      signal: hold.signal,
    });
    const reader = (await long).body!.getReader();
    await reader.read();
    assert.equal(server.model().engine.counts().running, 1);
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '1');
    const body = (await res.json()) as { error: { type: string; code: string } };
    assert.equal(body.error.type, 'rate_limit_error');
    assert.equal((await long).status, 200);
    hold.abort();
  } finally {
    await server.close();
  }
});
