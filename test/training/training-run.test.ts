import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint } from '../../src/training/checkpoint.js';
import { runSft } from '../../src/training/sft.js';
import { truncateMetrics } from '../../src/training/training-run.js';
import { testModel } from '../helpers.js';

const quiet = { log: () => {}, progress: false };
const stepsIn = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);

test('an SFT run killed after its checkpoint, then resumed, leaves one metrics.jsonl line per step', async () => {
  const out = mkdtempSync(join(tmpdir(), 'prs-sft-kill-'));
  const config = {
    base_model: await testModel('micro', 0), out,
    data: { suites: ['vstar-syn'], examples: 4, seed: 3 },
    hyperparameters: { steps: 6, batch_size: 2, lr: 0.002, warmup_steps: 1 }, checkpoint_every: 2,
  };
  // The process dies at step 3: logged, past the checkpoint of step 2 (onStep runs between the two).
  await assert.rejects(runSft(config, { ...quiet, onStep: (s) => assert.ok(s.step < 3, 'killed') }), /killed/);
  // ... and half-way through writing step 4's line.
  appendFileSync(join(out, 'metrics.jsonl'), '{"step":4,"lo');
  assert.equal((await loadCheckpoint(join(out, 'checkpoint'))).meta.step, 2);
  const redone: number[] = [];
  const resumed = await runSft(config, { ...quiet, onStep: (s) => redone.push(s.step) });
  assert.equal(resumed.state, 'succeeded');
  assert.deepEqual(redone, [3, 4, 5, 6]);
  assert.deepEqual(stepsIn(join(out, 'metrics.jsonl')), [1, 2, 3, 4, 5, 6]);
});

test('truncateMetrics keeps one line per step up to the checkpoint, and leaves a clean file as it is', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'prs-metrics-'));
  const path = join(dir, 'metrics.jsonl');
  // Steps 1-12 of a run checkpointed at 10, step 6 logged twice by an earlier resume, a torn last line.
  const line = (step: number, loss: number) => `${JSON.stringify({ step, loss })}\n`;
  writeFileSync(path, [1, 2, 3, 4, 5, 6].map((s) => line(s, s)).join('') + line(6, 60) + [7, 8, 9, 10, 11, 12].map((s) => line(s, s)).join('') + '{"step":13,');
  await truncateMetrics(path, 10);
  assert.deepEqual(stepsIn(path), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal((JSON.parse(readFileSync(path, 'utf8').split('\n')[5]!) as { loss: number }).loss, 60, 'the later line of a step logged twice');
  assert.deepEqual(readdirSync(dir), ['metrics.jsonl'], 'no temp file left');
  const clean = readFileSync(path, 'utf8');
  await truncateMetrics(path, 10);
  assert.equal(readFileSync(path, 'utf8'), clean);
  // No checkpoint: the run starts over, so nothing stays. No file: nothing to do.
  await truncateMetrics(path, 0);
  assert.equal(readFileSync(path, 'utf8'), '');
  await truncateMetrics(join(dir, 'absent.jsonl'), 5);
});
