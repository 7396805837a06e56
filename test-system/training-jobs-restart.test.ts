import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint, recoverCheckpoint } from '../src/training/checkpoint.js';
import { ADMIN_TOKEN, adminHeaders, testModel, until, waitForJob } from '../test/helpers.js';
import { startCli, waitReady } from './helpers.js';

const TOKEN = ADMIN_TOKEN;
const auth = adminHeaders;


test('SIGKILL the server during a job: after restart it is interrupted, resume continues from the last checkpoint, checkpoints load', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'prs-jobs-kill-'));
  const model = await testModel('micro', 0);
  const args = ['--model', model, '--admin-token', TOKEN, '--data-dir', dataDir, '--threads', '1', '--training-threads', '1'];
  const first = await startCli(args);
  await waitReady(first.url);
  const created = await fetch(`${first.url}/admin/v1/training/jobs`, {
    method: 'POST', headers: auth,
    body: JSON.stringify({ type: 'sft', base_model: model, data: { suites: ['vstar-syn'], examples: 4, seed: 2 }, hyperparameters: { steps: 30, batch_size: 2, lr: 0.002, warmup_steps: 1 }, checkpoint_every: 4 }),
  });
  assert.equal(created.status, 202);
  const { id } = (await created.json()) as { id: string };
  await waitForJob(`${first.url}/admin/v1/training/jobs/${id}`, (j) => j.step >= 10, 120_000);
  // The job runs in a child process, which exits when its IPC channel closes: wait for it, not for a clock.
  const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(first.proc.pid)], { encoding: 'utf8' }).split('\n').map(Number).filter((p) => p > 0);
  first.proc.kill('SIGKILL');
  await new Promise((r) => first.proc.once('exit', r));
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  await until(() => children.every((pid) => !alive(pid)));

  const jobDir = join(dataDir, 'jobs', id);
  // The kill may land inside a save: the restart recovers the newest complete checkpoint, as here.
  await recoverCheckpoint(join(jobDir, 'checkpoint'));
  const saved = await loadCheckpoint(join(jobDir, 'checkpoint'));
  assert.ok(saved.meta.step >= 8 && saved.meta.step % 4 === 0, `checkpoint at step ${saved.meta.step}`);

  const second = await startCli(args);
  try {
    await waitReady(second.url);
    const url = `${second.url}/admin/v1/training/jobs/${id}`;
    assert.equal(((await (await fetch(url, { headers: auth })).json()) as any).state, 'interrupted');
    assert.equal((await fetch(`${url}/resume`, { method: 'POST', headers: auth })).status, 202);
    const done = await waitForJob(url, (j) => j.state === 'succeeded' || j.state === 'failed', 120_000);
    assert.equal(done.state, 'succeeded', done.error);
    assert.equal(done.step, 30);
    const steps = readFileSync(join(jobDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
    console.log(`killed with checkpoint at step ${saved.meta.step}; metrics.jsonl steps ${steps[0]}..${steps.at(-1)} (${steps.length} lines)`);
    // The steps redone after the checkpoint replace the killed run's lines: one line per step (#27).
    assert.deepEqual(steps, Array.from({ length: 30 }, (_, i) => i + 1));
    const final = await loadCheckpoint(join(jobDir, 'checkpoint'));
    assert.equal(final.meta.step, 30);
  } finally {
    second.proc.kill('SIGTERM');
  }
});
