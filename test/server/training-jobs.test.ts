import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { ADMIN_TOKEN, adminHeaders, startTestServer, testModel, waitForJob } from '../helpers.js';

const TOKEN = ADMIN_TOKEN;
const auth = adminHeaders;

async function post(url: string, body: unknown) {
  return fetch(url, { method: 'POST', headers: auth, body: JSON.stringify(body) });
}

/** Reads an SSE stream to its end: [event, data] pairs. */
async function readEvents(url: string): Promise<[string, any][]> {
  const res = await fetch(url, { headers: auth });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.startsWith('event:')).map((b) => {
    const [ev, data] = b.split('\n');
    return [ev!.slice(7), JSON.parse(data!.slice(6))];
  });
}


const sftJob = async (steps: number) => ({
  type: 'sft', base_model: await testModel('micro', 0),
  data: { suites: ['vstar-syn', 'tally-syn'], examples: 4, seed: 1 },
  hyperparameters: { steps, batch_size: 2, lr: 0.003, warmup_steps: 2 }, checkpoint_every: 5,
});

test('admin training routes: 404 without an admin token configured, 401 without or with a wrong token, 400 on a bad job', async () => {
  const off = await startTestServer();
  try {
    assert.equal((await fetch(`${off.url}/admin/v1/training/jobs`)).status, 404);
  } finally {
    await off.close();
  }
  const s = await startTestServer({ adminToken: TOKEN, dataDir: mkdtempSync(join(tmpdir(), 'prs-jobs-')) });
  try {
    assert.equal((await fetch(`${s.url}/admin/v1/training/jobs`)).status, 401);
    assert.equal((await fetch(`${s.url}/admin/v1/training/jobs`, { headers: { authorization: 'Bearer nope' } })).status, 401);
    const bad = await post(`${s.url}/admin/v1/training/jobs`, { type: 'dpo', data: {} });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.code, 'invalid_job');
    const noSuite = await post(`${s.url}/admin/v1/training/jobs`, { type: 'sft', data: { examples: 4 } });
    assert.equal(noSuite.status, 400);
    const badOption = await post(`${s.url}/admin/v1/training/jobs`, { type: 'sft', data: { suites: ['tally-syn'], suite_options: { 'tally-syn': { palette: 9 } } } });
    assert.equal(badOption.status, 400);
    assert.match(((await badOption.json()) as any).error.message, /option "palette" takes integers in \[1, 4\]/);
    assert.equal((await fetch(`${s.url}/admin/v1/training/jobs/job-missing`, { headers: auth })).status, 404);
  } finally {
    await s.close();
  }
});

test('an SFT job runs to succeeded with progress events; activating it mid-stream lets that stream finish and switches new requests', async () => {
  const s = await startTestServer({ adminToken: TOKEN, dataDir: mkdtempSync(join(tmpdir(), 'prs-jobs-')), trainingThreads: 1 });
  try {
    const created = await post(`${s.url}/admin/v1/training/jobs`, await sftJob(12));
    assert.equal(created.status, 202);
    const job = (await created.json()) as any;
    assert.ok(['queued', 'running'].includes(job.state));
    const events = await readEvents(`${s.url}/admin/v1/training/jobs/${job.id}/events`);
    const progress = events.filter(([e]) => e === 'progress').map(([, j]) => j.step);
    console.log(`SFT job progress events at steps ${progress.join(',')}`);
    assert.ok(progress.length >= 5, `progress events: ${progress}`);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
    const final = events.at(-1)![1];
    assert.equal(final.state, 'succeeded');
    assert.equal(final.step, 12);
    assert.ok(Number.isFinite(final.metrics.loss));
    const listed = (await (await fetch(`${s.url}/admin/v1/training/jobs`, { headers: auth })).json()) as any;
    assert.equal(listed.data[0].id, job.id);
    assert.match(await (await fetch(`${s.url}/admin/v1/training/jobs/${job.id}/plots/loss.svg`, { headers: auth })).text(), /^<svg/);

    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x' });
    const oldName = (await client.models.list()).data[0]!.id;
    const stream = await client.chat.completions.create({ model: oldName, messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: 300, stream: true, temperature: 0, ignore_eos: true } as never) as unknown as AsyncIterable<any>;
    let chunks = 0;
    let finish: string | undefined;
    let activated = false;
    for await (const chunk of stream) {
      chunks++;
      finish = chunk.choices[0]?.finish_reason ?? finish;
      assert.equal(chunk.model, oldName, 'the in-flight request stays on the old model');
      if (chunks === 3 && !activated) {
        activated = true;
        const a = await fetch(`${s.url}/admin/v1/models/${job.id}/activate`, { method: 'POST', headers: auth });
        assert.equal(a.status, 200);
        assert.equal(((await a.json()) as any).id, final.model);
      }
    }
    console.log(`stream on ${oldName}: ${chunks} chunks, finish_reason ${finish}; activated ${final.model} after chunk 3`);
    assert.ok(activated);
    assert.equal(finish, 'length');
    const after = await client.chat.completions.create({ model: final.model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    console.log(`next request served by ${after.model}`);
    assert.equal(after.model, final.model);
    assert.equal((await client.models.list()).data[0]!.id, final.model);

    // An RL job starting from the SFT job's model (its id as base_model).
    const rl = await post(`${s.url}/admin/v1/training/jobs`, {
      type: 'rl', base_model: job.id, data: { suites: ['vstar-syn'], seed: 0 },
      rollouts: { group_size: 2, prompts_per_step: 1, max_tokens: 24 }, hyperparameters: { steps: 1 },
    });
    assert.equal(rl.status, 202);
    const rlJob = (await rl.json()) as any;
    const rlEvents = await readEvents(`${s.url}/admin/v1/training/jobs/${rlJob.id}/events`);
    const rlFinal = rlEvents.at(-1)![1];
    assert.equal(rlFinal.state, 'succeeded', rlFinal.error);
    console.log(`RL job metrics: ${JSON.stringify(rlFinal.metrics)}`);
    for (const k of ['reward_correctness', 'reward_curiosity', 'reward_penalty', 'accuracy', 'rapr']) assert.ok(Number.isFinite(rlFinal.metrics[k]), k);
    assert.match(await (await fetch(`${s.url}/admin/v1/training/jobs/${rlJob.id}/plots/rewards.svg`, { headers: auth })).text(), /^<svg/);
  } finally {
    await s.close();
  }
});

test('cancel stops a running job within one step and keeps its last checkpoint; resume continues the step count', async () => {
  const s = await startTestServer({ adminToken: TOKEN, dataDir: mkdtempSync(join(tmpdir(), 'prs-jobs-')), trainingThreads: 1 });
  try {
    const job = (await (await post(`${s.url}/admin/v1/training/jobs`, await sftJob(400))).json()) as any;
    const url = `${s.url}/admin/v1/training/jobs/${job.id}`;
    await waitForJob(url, (j) => j.step >= 6);
    const del = await fetch(url, { method: 'DELETE', headers: auth });
    assert.equal(del.status, 200);
    const stepAtCancel = ((await del.json()) as any).step;
    const cancelled = await waitForJob(url, (j) => j.state === 'cancelled');
    console.log(`cancel answered at step ${stepAtCancel}; the job stopped at step ${cancelled.step}`);
    assert.ok(cancelled.step <= stepAtCancel + 1, `cancel at step ${stepAtCancel}, stopped at ${cancelled.step}`);
    const resumed = await post(`${url}/resume`, {});
    assert.equal(resumed.status, 202);
    const again = await waitForJob(url, (j) => j.state === 'running' && j.step > cancelled.step);
    assert.ok(again.step > cancelled.step);
    await fetch(url, { method: 'DELETE', headers: auth });
    await waitForJob(url, (j) => j.state === 'cancelled');
  } finally {
    await s.close();
  }
});
