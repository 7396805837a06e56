import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, openSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { RlConfigSchema } from '../training/rl.js';
import { SftConfigSchema } from '../training/sft.js';
import { TERMINAL, type JobRecord, type JobType, type WorkerMessage } from './job-record.js';
import { JobStore } from './job-store.js';

const WORKER = join(import.meta.dirname, 'job-worker.ts');

/** POST /admin/v1/training/jobs body; the rest of the training config is checked by the stage's own schema. */
export const CreateJobSchema = z.object({
  type: z.enum(['sft', 'rl']),
  /** A model directory, or the id of a succeeded job (its model); default: the served default model. */
  base_model: z.string().optional(),
  data: z.record(z.string(), z.unknown()),
  hyperparameters: z.record(z.string(), z.unknown()).optional(),
  rollouts: z.record(z.string(), z.unknown()).optional(),
  reward: z.record(z.string(), z.unknown()).optional(),
  checkpoint_every: z.number().int().positive().optional(),
});

export class JobError extends Error {
  constructor(readonly status: number, message: string, readonly code: string) {
    super(message);
  }
}

export interface JobManagerOptions {
  dataDir: string;
  /** ONNX Runtime threads per job. */
  threads: number;
  maxConcurrent: number;
  /** Niceness of job processes (serving keeps priority). */
  niceness?: number;
  log?: (obj: Record<string, unknown>, msg: string) => void;
}

export type JobEvent = { type: 'state' | 'progress'; job: JobRecord };

/**
 * Queues training jobs and runs each in a child process (its own ONNX Runtime sessions and
 * rollout engine, a bounded thread count, lower CPU priority), persisting every change. On start,
 * jobs that were running when the server died are marked `interrupted`; queued ones run again.
 */
export class JobManager {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly children = new Map<string, ChildProcess>();
  private readonly events = new EventEmitter();
  private readonly store: JobStore;
  private closing = false;

  private constructor(private readonly opts: JobManagerOptions) {
    this.store = new JobStore(resolve(opts.dataDir));
    this.events.setMaxListeners(0);
  }

  static async open(opts: JobManagerOptions): Promise<JobManager> {
    const m = new JobManager(opts);
    for (const job of await m.store.loadAll()) {
      if (job.state === 'running') {
        job.state = 'interrupted';
        job.finished_at = Math.floor(Date.now() / 1000);
        await m.store.save(job);
      }
      m.jobs.set(job.id, job);
    }
    m.pump();
    return m;
  }

  list(): JobRecord[] {
    return [...this.jobs.values()].sort((a, b) => b.created_at - a.created_at);
  }

  get(id: string): JobRecord {
    const job = this.jobs.get(id);
    if (!job) throw new JobError(404, `No training job "${id}".`, 'job_not_found');
    return job;
  }

  dir(id: string): string {
    return this.store.dir(id);
  }

  /** The servable model directory of a succeeded job. */
  modelDir(id: string): string {
    const job = this.get(id);
    const dir = join(this.dir(id), 'model');
    if (job.state !== 'succeeded' || !existsSync(join(dir, 'config.json'))) {
      throw new JobError(409, `Job "${id}" has no finished model (state: ${job.state}).`, 'model_not_ready');
    }
    return dir;
  }

  subscribe(id: string, listener: (e: JobEvent) => void): () => void {
    this.events.on(id, listener);
    return () => this.events.off(id, listener);
  }

  async create(body: unknown): Promise<JobRecord> {
    const parsed = CreateJobSchema.safeParse(body);
    if (!parsed.success) throw new JobError(400, `Invalid training job: ${z.prettifyError(parsed.error)}`, 'invalid_job');
    const req = parsed.data;
    const id = `job-${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`;
    let baseModel = req.base_model;
    if (baseModel && this.jobs.has(baseModel)) baseModel = this.modelDir(baseModel);
    else if (baseModel && !existsSync(join(resolve(baseModel), 'config.json'))) {
      throw new JobError(400, `base_model "${baseModel}" is neither a model directory nor a succeeded job.`, 'invalid_job');
    }
    const { type, ...rest } = req;
    const schema = type === 'sft' ? SftConfigSchema : RlConfigSchema;
    const model = `${type}-${id}`;
    const checked = schema.safeParse({ ...rest, base_model: baseModel ? resolve(baseModel) : undefined, out: this.dir(id), threads: this.opts.threads, model_name: model });
    if (!checked.success) throw new JobError(400, `Invalid ${type} job: ${z.prettifyError(checked.error)}`, 'invalid_job');
    const { out: _out, ...config } = checked.data as Record<string, unknown>;
    const total = (config.hyperparameters as { steps: number }).steps;
    const job: JobRecord = {
      id, object: 'training.job', type: type as JobType, state: 'queued', created_at: Math.floor(Date.now() / 1000),
      step: 0, total_steps: total, progress: 0, model, config,
    };
    this.jobs.set(id, job);
    await this.store.save(job);
    this.emit(job, 'state');
    this.pump();
    return job;
  }

  /** Cancels a queued job at once, or asks a running one to stop after its current step. */
  async cancel(id: string): Promise<JobRecord> {
    const job = this.get(id);
    if (TERMINAL.has(job.state) && job.state !== 'interrupted') return job;
    const child = this.children.get(id);
    if (!child) {
      await this.finish(job, 'cancelled');
      return job;
    }
    // Wait for the worker's reply so the job says the step it was at (step messages may still be in flight).
    const acknowledged = new Promise<void>((resolve) => {
      const onMessage = (m: WorkerMessage) => {
        if (m.type !== 'cancelling') return;
        job.step = Math.max(job.step, m.step);
        child.off('message', onMessage);
        resolve();
      };
      child.on('message', onMessage);
      child.once('exit', () => resolve());
      setTimeout(resolve, 5000).unref();
    });
    child.send({ type: 'cancel' });
    await acknowledged;
    return job;
  }

  /** Queues an interrupted (or cancelled, or failed) job again; it continues from its last checkpoint. */
  async resume(id: string): Promise<JobRecord> {
    const job = this.get(id);
    if (!['interrupted', 'cancelled', 'failed'].includes(job.state)) {
      throw new JobError(409, `Job "${id}" is ${job.state}; only interrupted, cancelled or failed jobs resume.`, 'job_not_resumable');
    }
    job.state = 'queued';
    delete job.error;
    delete job.finished_at;
    await this.store.save(job);
    this.emit(job, 'state');
    this.pump();
    return job;
  }

  /** Stops running jobs (server shutdown): they stay `running` on disk, so the next start marks them interrupted. */
  close(): void {
    this.closing = true;
    for (const child of this.children.values()) child.kill('SIGTERM');
  }

  private emit(job: JobRecord, type: JobEvent['type']): void {
    this.events.emit(job.id, { type, job });
  }

  private async finish(job: JobRecord, state: JobRecord['state'], error?: string): Promise<void> {
    job.state = state;
    job.finished_at = Math.floor(Date.now() / 1000);
    delete job.eta_s;
    if (error) job.error = error;
    await this.store.save(job);
    this.emit(job, 'state');
  }

  private pump(): void {
    const running = [...this.jobs.values()].filter((j) => j.state === 'running').length;
    const next = [...this.jobs.values()].filter((j) => j.state === 'queued').sort((a, b) => a.created_at - b.created_at);
    for (const job of next.slice(0, Math.max(0, this.opts.maxConcurrent - running))) void this.start(job);
  }

  private async start(job: JobRecord): Promise<void> {
    job.state = 'running';
    job.started_at = Math.floor(Date.now() / 1000);
    await this.store.save(job);
    this.emit(job, 'state');
    const dir = this.dir(job.id);
    const logFd = openSync(join(dir, 'log.txt'), 'a');
    const child = fork(WORKER, [dir], { execArgv: ['--import', 'tsx'], stdio: ['ignore', logFd, logFd, 'ipc'] });
    closeSync(logFd); // the child has its own copy

    this.children.set(job.id, child);
    try {
      if (child.pid) setPriority(child.pid, this.opts.niceness ?? 10);
    } catch {
      // Raising niceness can be refused in some containers; the thread cap still bounds the job.
    }
    const startedAt = performance.now();
    const startStep = job.step;
    let outcome: WorkerMessage | undefined;
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'step') {
        job.step = m.step;
        job.progress = job.total_steps ? job.step / job.total_steps : 0;
        const rate = (job.step - startStep) / ((performance.now() - startedAt) / 1000);
        job.eta_s = rate > 0 ? Math.round((job.total_steps - job.step) / rate) : undefined;
        job.metrics = m.metrics;
        this.store.save(job).catch((e: unknown) => this.opts.log?.({ job: job.id, err: String(e) }, 'could not save job state'));
        this.emit(job, 'progress');
      } else if (m.type === 'done' || m.type === 'failed') outcome = m;
    });
    child.on('exit', (code) => {
      this.children.delete(job.id);
      const done = async () => {
        if (outcome?.type === 'done') await this.finish(job, outcome.state);
        else if (this.closing) await this.finish(job, 'interrupted');
        else if (outcome?.type === 'failed') await this.finish(job, 'failed', outcome.error);
        else await this.finish(job, 'failed', `training process exited with code ${code} (see log.txt in the job folder)`);
        this.opts.log?.({ job: job.id, state: job.state }, 'training job finished');
        this.pump();
      };
      void done();
    });
  }
}
