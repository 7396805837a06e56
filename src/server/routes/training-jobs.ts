import express, { type NextFunction, type Request, type Response } from 'express';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JobError, type JobManager } from '../../jobs/job-manager.js';
import { TERMINAL } from '../../jobs/job-record.js';
import { ApiError } from '../errors.js';

const PLOTS = new Set(['loss.svg', 'rewards.svg']);

function wrap(fn: (req: Request, res: Response) => Promise<void> | void) {
  return (req: Request, res: Response, next: NextFunction) => {
    Promise.resolve(fn(req, res)).catch((e: unknown) => {
      if (e instanceof JobError) next(new ApiError(e.status, e.message, e.code));
      else next(e);
    });
  };
}

/**
 * /admin/v1/training/jobs: create (202), list, get, SSE events, cancel (DELETE), resume, plots.
 * Mounted behind the admin token.
 */
export function trainingJobsRouter(jobs: JobManager): express.Router {
  const r = express.Router();
  r.post('/', wrap(async (req, res) => {
    const job = await jobs.create(req.body);
    res.status(202).location(`/admin/v1/training/jobs/${job.id}`).json(job);
  }));
  r.get('/', (_req, res) => {
    res.json({ object: 'list', data: jobs.list() });
  });
  r.get('/:id', wrap((req, res) => {
    res.json(jobs.get(String(req.params.id)));
  }));
  r.delete('/:id', wrap(async (req, res) => {
    res.json(await jobs.cancel(String(req.params.id)));
  }));
  r.post('/:id/resume', wrap(async (req, res) => {
    res.status(202).json(await jobs.resume(String(req.params.id)));
  }));
  r.get('/:id/plots/:name', wrap(async (req, res) => {
    const id = String(req.params.id);
    const name = String(req.params.name);
    jobs.get(id);
    if (!PLOTS.has(name)) throw new JobError(404, `No plot "${name}" (plots: ${[...PLOTS].join(', ')}).`, 'not_found');
    const svg = await readFile(join(jobs.dir(id), name), 'utf8').catch(() => undefined);
    if (svg === undefined) throw new JobError(404, `Job "${id}" has no ${name} yet.`, 'not_found');
    res.type('image/svg+xml').send(svg);
  }));
  // Server-sent events: the job now, then every state change and step, closed when the job ends.
  r.get('/:id/events', wrap((req, res) => {
    const id = String(req.params.id);
    const job = jobs.get(id);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    const send = (type: string, data: unknown) => res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    send('state', job);
    if (TERMINAL.has(job.state)) return void res.end();
    const unsubscribe = jobs.subscribe(id, (e) => {
      send(e.type, e.job);
      if (e.type === 'state' && TERMINAL.has(e.job.state)) {
        unsubscribe();
        res.end();
      }
    });
    const ping = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(ping);
      unsubscribe();
    });
  }));
  return r;
}
