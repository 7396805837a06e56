import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { PACKAGE_ROOT } from '../model/default-model.js';
import type { Registry } from 'prom-client';
import type { Engine } from '../engine/engine.js';
import type { ServerConfig } from './config.js';
import { ApiError, sendError } from './errors.js';
import type { Logger } from './logger.js';
import { chatCompletionsHandler } from './routes/chat-completions.js';
import { detokenizeHandler, tokenizeHandler } from './routes/tokenize.js';
import { trainingJobsRouter } from './routes/training-jobs.js';
import { JobError, type JobManager } from '../jobs/job-manager.js';

/** What the routes serve; swapped as a whole when another model is activated. */
export interface ServingModel {
  engine: Engine;
  name: string;
  createdAt: number;
}

export interface AppDeps {
  config: ServerConfig;
  logger: Logger;
  model: () => ServingModel;
  registry: Registry;
  /** True once the model is loaded and warmed up. */
  ready: () => boolean;
  /** Training jobs (admin API); present when an admin token is configured. */
  jobs?: JobManager;
  /** Makes a succeeded job's model the served one (new requests use it; in-flight ones finish on the old). */
  activate?: (jobId: string) => Promise<ServingModel>;
}

function requestId(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.header('x-request-id');
  const id = incoming && /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID();
  res.locals.requestId = id;
  res.setHeader('x-request-id', id);
  next();
}

function apiKeyAuth(keys: string[]) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (keys.length === 0) return next();
    const m = /^Bearer (.+)$/.exec(req.header('authorization') ?? '');
    if (m && keys.includes(m[1]!)) return next();
    next(new ApiError(401, 'Invalid or missing API key. Send it as "Authorization: Bearer <key>".', 'invalid_api_key', null, 'authentication_error'));
  };
}

function adminAuth(token: string) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (req.header('authorization') === `Bearer ${token}`) return next();
    next(new ApiError(401, 'Admin routes need "Authorization: Bearer <admin token>".', 'invalid_admin_token', null, 'authentication_error'));
  };
}

export function createApp(deps: AppDeps): express.Express {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(requestId);
  app.use((req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () =>
      logger.info({ request_id: res.locals.requestId, method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - start) / 1e6 }, 'request'),
    );
    next();
  });

  // The playground: static files, no build step.
  app.use(express.static(join(PACKAGE_ROOT, 'public'), { index: 'index.html' }));
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', (_req, res) => {
    const ready = deps.ready();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'starting' });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', deps.registry.contentType).send(await deps.registry.metrics());
  });

  for (const path of ['/tokenize', '/detokenize']) app.use(path, apiKeyAuth(config.apiKeys), express.json({ limit: config.maxBodyBytes }));
  app.post('/tokenize', tokenizeHandler(() => deps.model().engine));
  app.post('/detokenize', detokenizeHandler(() => deps.model().engine));

  // Admin routes exist only when an admin token is configured, and always require it.
  if (config.adminToken) {
    app.use('/admin', adminAuth(config.adminToken), express.json({ limit: config.maxBodyBytes }));
    app.get('/admin/v1/models', (_req, res) => {
      const m = deps.model();
      res.json({ data: [{ id: m.name, created: m.createdAt, fast_decoder: m.engine.model.fast, ...m.engine.counts(), kv_cache_usage: m.engine.kvUsage() }] });
    });
    if (deps.jobs) app.use('/admin/v1/training/jobs', trainingJobsRouter(deps.jobs));
    const activate = deps.activate;
    if (activate) {
      app.post('/admin/v1/models/:id/activate', (req, res, next) => {
        activate(String(req.params.id)).then(
          (m) => res.json({ id: m.name, object: 'model', created: m.createdAt, active: true }),
          (e: unknown) => next(e instanceof JobError ? new ApiError(e.status, e.message, e.code) : e),
        );
      });
    }
  }

  app.use('/v1', apiKeyAuth(config.apiKeys));
  app.use('/v1', express.json({ limit: config.maxBodyBytes }));
  app.get('/v1/models', (_req, res) => {
    const m = deps.model();
    res.json({
      object: 'list',
      data: [{ id: m.name, object: 'model', created: m.createdAt, owned_by: 'pixel-reasoner-server', max_model_len: config.maxModelLen }],
    });
  });
  app.post('/v1/chat/completions', chatCompletionsHandler({ engine: () => deps.model().engine, modelName: () => deps.model().name, config }));

  app.use((_req, _res, next) => next(new ApiError(404, 'Not found', 'not_found', null, 'not_found_error')));
  // Express recognises error handlers by arity: keep all four parameters.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (err instanceof ApiError) return sendError(res, err);
    if (e.type === 'entity.parse.failed') return sendError(res, new ApiError(400, `Malformed JSON in request body: ${e.message}`, 'invalid_json'));
    if (e.type === 'entity.too.large') return sendError(res, new ApiError(413, `Request body is larger than the limit of ${config.maxBodyBytes} bytes.`, 'request_too_large'));
    if (e.status && e.status >= 400 && e.status < 500) return sendError(res, new ApiError(e.status, e.message ?? 'Bad request', 'bad_request'));
    logger.error({ err, request_id: res.locals.requestId }, 'unhandled error');
    if (res.headersSent) return res.end();
    sendError(res, new ApiError(500, 'Internal server error', 'internal_error'));
  });
  return app;
}
