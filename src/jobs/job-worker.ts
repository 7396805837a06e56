/**
 * A training job's child process: runs SFT or RL with the job folder as its run folder, reports
 * each step to the server over IPC, and stops after the current step (checkpointed) when the
 * server asks it to cancel. If the server dies, the IPC channel closes and the job exits: the
 * server marks it `interrupted` on its next start, and resume continues from the last checkpoint.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runRl } from '../training/rl.js';
import { runSft } from '../training/sft.js';
import type { JobType, WorkerMessage } from './job-record.js';

const dir = process.argv[2]!;
const send = (m: WorkerMessage) => process.send?.(m);
const abort = new AbortController();
let lastStep = 0;
process.on('message', (m: { type?: string }) => {
  if (m?.type !== 'cancel') return;
  abort.abort();
  send({ type: 'cancelling', step: lastStep });
});
process.on('disconnect', () => process.exit(1));

const job = JSON.parse(await readFile(join(dir, 'job.json'), 'utf8')) as { type: JobType; config: Record<string, unknown> };
const hooks = {
  signal: abort.signal,
  progress: false,
  log: (message: string) => process.stderr.write(`${message}\n`),
  onStep: (log: { step: number }) => {
    lastStep = log.step;
    const metrics = Object.fromEntries(Object.entries(log).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
    send({ type: 'step', step: log.step, metrics });
  },
};
try {
  const config = { ...job.config, out: dir };
  const result = job.type === 'sft' ? await runSft(config, hooks) : await runRl(config, hooks);
  send({ type: 'done', state: result.state, modelDir: result.modelDir });
} catch (e) {
  send({ type: 'failed', error: (e as Error).message });
}
process.disconnect?.();
