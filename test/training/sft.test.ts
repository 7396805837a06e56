import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { loadCheckpoint } from '../../src/training/checkpoint.js';
import { runSft } from '../../src/training/sft.js';
import { startCli, waitReady } from '../../test-system/helpers.js';
import { dataUrl, testImagePng, testModel } from '../helpers.js';

const quiet = { log: () => {}, progress: false };

test('a short SFT run halves the training loss, and its exported model serves through pixelreasoner serve', async () => {
  const out = mkdtempSync(join(tmpdir(), 'prs-sft-'));
  const result = await runSft({
    base_model: await testModel('micro', 0), out,
    data: { suites: ['vstar-syn', 'tally-syn'], examples: 8, seed: 0 },
    hyperparameters: { steps: 30, batch_size: 4, lr: 0.003, warmup_steps: 3 }, checkpoint_every: 10,
  }, quiet);
  assert.equal(result.state, 'succeeded');
  console.log(`SFT loss ${result.firstLoss.toFixed(3)} -> ${result.lastLoss.toFixed(3)}`);
  assert.ok(result.lastLoss <= result.firstLoss / 2, `loss ${result.firstLoss} -> ${result.lastLoss}`);
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(metrics.length, 30);
  assert.ok(metrics.every((m) => m.tokens_per_s > 0 && m.lr > 0 && Number.isFinite(m.loss)));
  assert.match(readFileSync(join(out, 'loss.svg'), 'utf8'), /^<svg[\s\S]*<path d="M/);

  const server = await startCli(['--model', result.modelDir!, '--threads', '1']);
  try {
    await waitReady(server.url);
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x' });
    const models = await client.models.list();
    assert.match(models.data[0]!.id, /-sft$/);
    const r = await client.chat.completions.create({
      model: models.data[0]!.id, max_tokens: 24, temperature: 0,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl(await testImagePng(640, 480)) } }, { type: 'text', text: 'What colour is the small square?' }] }],
    });
    assert.ok((r.choices[0]!.message.content ?? '').length > 0);
  } finally {
    server.proc.kill('SIGTERM');
  }
});

test('a cancelled SFT run keeps its checkpoint, and a rerun resumes with the step count continuing', async () => {
  const out = mkdtempSync(join(tmpdir(), 'prs-sft-resume-'));
  const config = {
    base_model: await testModel('micro', 0), out,
    data: { suites: ['vstar-syn'], examples: 4, seed: 3 },
    hyperparameters: { steps: 8, batch_size: 2, lr: 0.002, warmup_steps: 1 }, checkpoint_every: 100,
  };
  const abort = new AbortController();
  const first = await runSft(config, { ...quiet, signal: abort.signal, onStep: (s) => s.step === 3 && abort.abort() });
  assert.equal(first.state, 'cancelled');
  assert.equal(first.steps, 3);
  const saved = await loadCheckpoint(join(out, 'checkpoint'));
  assert.deepEqual([saved.meta.step, saved.meta.dataPosition, saved.adam.step], [3, 6, 3]);
  const steps: number[] = [];
  const second = await runSft(config, { ...quiet, onStep: (s) => steps.push(s.step) });
  assert.equal(second.state, 'succeeded');
  assert.deepEqual(steps, [4, 5, 6, 7, 8]);
});

test('without a fixed example set, SFT streams fresh tasks by data position (resume sees the same data)', async () => {
  const base = await testModel('micro', 0);
  const config = (out: string) => ({
    base_model: base, out,
    data: {
      suites: ['vstar-syn'], seed: 7, suite_options: { 'vstar-syn': { targetSize: [8, 24] } },
      mix: { direct: 0, zoom: 0.5, 'self-correction': 0, no_tools: 0, locate: 0.5 },
    },
    hyperparameters: { steps: 4, batch_size: 2, lr: 0.002, warmup_steps: 1 }, checkpoint_every: 100,
  });
  const whole: number[] = [];
  const straight = await runSft(config(mkdtempSync(join(tmpdir(), 'prs-sft-stream-'))), { ...quiet, onStep: (s) => whole.push(s.tokens) });
  assert.equal(straight.state, 'succeeded');
  assert.ok(Number.isFinite(straight.lastLoss));
  assert.ok(new Set(whole).size > 1, `every step draws new examples (tokens per step ${whole})`);
  const out = mkdtempSync(join(tmpdir(), 'prs-sft-stream-'));
  const abort = new AbortController();
  const parts: number[] = [];
  await runSft(config(out), { ...quiet, signal: abort.signal, onStep: (s) => { parts.push(s.tokens); if (s.step === 2) abort.abort(); } });
  await runSft(config(out), { ...quiet, onStep: (s) => parts.push(s.tokens) });
  assert.deepEqual(parts, whole);
});
