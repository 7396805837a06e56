/**
 * Serving latency while a training job runs: p50/p95 of a small chat request on an idle server,
 * then while an SFT job trains in its child process (the job's thread cap and lower priority are
 * what keep serving responsive). Prints the ratio; with --json the last line is one JSON object.
 *
 *   node --import tsx bench/training-interference.ts [--json] [--requests 30] [--training-threads 1]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveDefaultModel } from '../src/model/default-model.js';
import { resolveConfig } from '../src/server/config.js';
import { startServer } from '../src/server/server.js';

const { values } = parseArgs({ options: { json: { type: 'boolean' }, requests: { type: 'string' }, 'training-threads': { type: 'string' }, model: { type: 'string' } } });
const N = Number(values.requests ?? 30);
const log = (s: string) => process.stderr.write(`${s}\n`);
const TOKEN = 'bench';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

const model = values.model ?? (await resolveDefaultModel(log));
const server = await startServer(resolveConfig({
  model, port: 0, grpcPort: -1, host: '127.0.0.1', logLevel: 'silent', adminToken: TOKEN,
  dataDir: mkdtempSync(join(tmpdir(), 'prs-bench-jobs-')), trainingThreads: values['training-threads'] ?? 1,
}, {}));

async function latencies(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: server.model().name, messages: [{ role: 'user', content: `Say something short (${i}).` }], max_tokens: 16, temperature: 0 }),
    });
    await r.json();
    out.push(performance.now() - t0);
  }
  return out;
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

await latencies(3);
const idle = await latencies(N);
const job = await (await fetch(`${server.url}/admin/v1/training/jobs`, {
  method: 'POST', headers: auth,
  body: JSON.stringify({ type: 'sft', base_model: model, data: { suites: ['vstar-syn', 'tally-syn'], examples: 16, seed: 0 }, hyperparameters: { steps: 1000, batch_size: 4 } }),
})).json() as { id: string };
for (;;) {
  const j = await (await fetch(`${server.url}/admin/v1/training/jobs/${job.id}`, { headers: auth })).json() as { step: number; state: string };
  if (j.step >= 2 || j.state !== 'running') break;
  await new Promise((r) => setTimeout(r, 200));
}
const busy = await latencies(N);
const state = await (await fetch(`${server.url}/admin/v1/training/jobs/${job.id}`, { headers: auth })).json() as { step: number; metrics?: { tokens_per_s?: number } };
await fetch(`${server.url}/admin/v1/training/jobs/${job.id}`, { method: 'DELETE', headers: auth });
await server.close();
const result = {
  idle_p50_ms: pct(idle, 50), idle_p95_ms: pct(idle, 95), training_p50_ms: pct(busy, 50), training_p95_ms: pct(busy, 95),
  p50_ratio: pct(busy, 50) / pct(idle, 50), training_step_reached: state.step, training_tokens_per_s: state.metrics?.tokens_per_s,
  requests: N, model: server.model().name,
};
log(`idle p50 ${result.idle_p50_ms.toFixed(1)} ms (p95 ${result.idle_p95_ms.toFixed(1)}); during SFT p50 ${result.training_p50_ms.toFixed(1)} ms (p95 ${result.training_p95_ms.toFixed(1)}); ratio ${result.p50_ratio.toFixed(2)}x; job reached step ${state.step}`);
console.log(JSON.stringify(result));
process.exit(0);
