import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import { GREEDY } from '../engine/sampler.js';
import { EngineMetrics } from '../engine/metrics.js';
import { openEngine } from '../engine/open-engine.js';
import { resolveDefaultModel } from '../model/default-model.js';
import { loadModelFiles } from '../model/model-dir.js';
import type { ModelCacheOptions } from '../model/hf/model-cache.js';
import { join } from 'node:path';
import { createApp, type ServingModel } from './app.js';
import type { ServerConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { createMetricsRegistry } from './metrics-registry.js';
import { startGrpcServer } from './grpc/grpc-server.js';
import { JobManager } from '../jobs/job-manager.js';

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting connections; in-flight requests get `graceMs` to finish, then connections are cut. */
  close(graceMs?: number): Promise<void>;
  model(): ServingModel;
  /** gRPC port, when gRPC is enabled. */
  grpcPort?: number;
  logger: Logger;
  registry: Registry;
}

export async function loadServingModel(dir: string, config: ServerConfig, metrics?: EngineMetrics): Promise<ServingModel> {
  const files = await loadModelFiles(dir, modelCacheOptions(config));
  const engine = await openEngine(files, {
    threads: config.threads, maxModelLen: config.maxModelLen, maxNumSeqs: config.maxNumSeqs, maxNumBatchedTokens: config.maxNumBatchedTokens,
    maxWaiting: config.maxWaiting, enablePrefixCaching: config.enablePrefixCaching, metrics,
  });
  return { engine, name: config.servedModelName || files.name, createdAt: Math.floor(Date.now() / 1000) };
}

/** Where and at what precision a Hugging Face snapshot named as a model is converted. */
export function modelCacheOptions(config: ServerConfig): ModelCacheOptions {
  return { cacheDir: config.modelCache || join(config.dataDir, 'model-cache'), dtype: config.modelDtype };
}

/** One tiny generation so the first user request does not pay session warm-up. */
async function warmUp(model: ServingModel): Promise<void> {
  await model.engine.generate({ messages: [{ role: 'user', content: 'hi' }], sampling: GREEDY, maxTokens: 1, tools: [], maxToolCalls: 0, stop: [] });
}

/**
 * Releases a replaced model's sessions once its in-flight requests have finished: idle for a full
 * second, so a request that picked the old engine just before the swap (still decoding its
 * images) has reached its queue.
 */
async function retireWhenIdle(model: ServingModel, logger: Logger): Promise<void> {
  for (let idle = 0; idle < 10; ) {
    const c = model.engine.counts();
    idle = c.running + c.waiting + c.paused === 0 ? idle + 1 : 0;
    await new Promise((r) => setTimeout(r, 100));
  }
  await model.engine.release();
  logger.info({ model: model.name }, 'previous model released');
}

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const logger = createLogger(config.logLevel);
  const dir = config.model || (await resolveDefaultModel((m) => logger.info(m)));
  const registry = createMetricsRegistry();
  const metrics = new EngineMetrics(registry);
  let current = await loadServingModel(dir, config, metrics);
  logger.info({ model: current.name, dir, fast_decoder: current.engine.model.fast }, 'model loaded');
  let ready = false;
  const jobs = config.adminToken
    ? await JobManager.open({ dataDir: config.dataDir, threads: config.trainingThreads, maxConcurrent: config.maxConcurrentJobs, log: (o, m) => logger.info(o, m) })
    : undefined;
  const activate = async (jobId: string): Promise<ServingModel> => {
    const modelDir = jobs!.modelDir(jobId);
    const next = await loadServingModel(modelDir, { ...config, servedModelName: '' }, metrics);
    await warmUp(next);
    const previous = current;
    current = next;
    logger.info({ model: next.name, dir: modelDir, previous: previous.name }, 'model activated');
    void retireWhenIdle(previous, logger);
    return next;
  };
  const app = createApp({ config, logger, model: () => current, registry, ready: () => ready, jobs, activate: jobs ? activate : undefined });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  const grpcServer = config.grpcPort >= 0 ? await startGrpcServer({ host: config.host, port: config.grpcPort, config, logger, model: () => current }) : undefined;
  logger.info({ url, grpc_port: grpcServer?.port }, 'listening');
  await warmUp(current);
  ready = true;
  grpcServer?.setServing(true);
  return {
    url,
    port,
    logger,
    registry,
    model: () => current,
    grpcPort: grpcServer?.port,
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        jobs?.close();
        grpcServer?.setServing(false);
        const grpcClosed = grpcServer?.close(graceMs) ?? Promise.resolve();
        server.close(() => void grpcClosed.then(() => resolve()));
        server.closeIdleConnections();
        if (graceMs <= 0) server.closeAllConnections();
        else setTimeout(() => server.closeAllConnections(), graceMs).unref();
      }),
  };
}
