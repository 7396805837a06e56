import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { PACKAGE_ROOT } from '../../model/default-model.js';
import { encodeJpeg } from '../../tools/image.js';
import type { GenerationResult, ToolStep } from '../../engine/types.js';
import type { ServingModel } from '../app.js';
import type { ServerConfig } from '../config.js';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { mapEngineError, splitTurns, toEngineMessages, toGenerationRequest } from '../request-conversion.js';
import { ChatCompletionRequest, parseRequest } from '../schemas.js';

const PROTO_DIR = join(PACKAGE_ROOT, 'proto');
const SERVICE = 'pixelreasoner.v1.PixelReasoner';

/* Shapes of the proto messages as @grpc/proto-loader decodes them (keepCase, oneofs). */
interface ProtoImage { data?: Buffer; url?: string; source?: string }
interface ProtoPart { text?: string; image?: ProtoImage; video?: { frames: ProtoImage[] }; part?: string }
interface ProtoRequest {
  model: string;
  messages: { role: string; content: ProtoPart[] }[];
  sampling?: { temperature?: number; top_p?: number; top_k?: number; seed?: number; max_tokens?: number; stop: string[]; ignore_eos: boolean };
  pixel_reasoning?: { enabled?: boolean; max_tool_calls?: number; tools: string[] };
}

const imageUrl = (img: ProtoImage) => (img.url ? img.url : `data:image/unknown;base64,${(img.data ?? Buffer.alloc(0)).toString('base64')}`);

/** A gRPC request as the chat-completions body it is equivalent to (then validated by the same schema). */
function toChatBody(req: ProtoRequest): unknown {
  const s = req.sampling;
  return {
    model: req.model || undefined,
    messages: req.messages.map((m) => {
      if (m.role !== 'user') return { role: m.role, content: m.content.map((p) => p.text ?? '').join('') };
      return {
        role: 'user',
        content: m.content.map((p) =>
          p.image ? { type: 'image_url', image_url: { url: imageUrl(p.image) } } : p.video ? { type: 'video', video: p.video.frames.map(imageUrl) } : { type: 'text', text: p.text ?? '' },
        ),
      };
    }),
    temperature: s?.temperature, top_p: s?.top_p, top_k: s?.top_k, seed: s?.seed, max_tokens: s?.max_tokens,
    stop: s?.stop.length ? s.stop : undefined,
    ignore_eos: s?.ignore_eos || undefined,
    pixel_reasoning: req.pixel_reasoning
      ? { enabled: req.pixel_reasoning.enabled, max_tool_calls: req.pixel_reasoning.max_tool_calls, tools: req.pixel_reasoning.tools.length ? req.pixel_reasoning.tools : undefined }
      : undefined,
  };
}

function grpcError(e: unknown, deadlineHit: boolean): Partial<grpc.StatusObject> {
  if (deadlineHit) return { code: grpc.status.DEADLINE_EXCEEDED, details: 'deadline exceeded' };
  if (e instanceof ApiError) {
    const code = e.status === 429 ? grpc.status.RESOURCE_EXHAUSTED : e.status === 401 ? grpc.status.UNAUTHENTICATED : e.status >= 500 ? grpc.status.INTERNAL : grpc.status.INVALID_ARGUMENT;
    return { code, details: e.param ? `${e.message} (param: ${e.param})` : e.message };
  }
  return { code: grpc.status.INTERNAL, details: (e as Error).message };
}

async function toolMessages(step: ToolStep): Promise<Record<string, unknown>[]> {
  const call = { tool_call: { index: step.index, name: step.name, arguments_json: JSON.stringify(step.arguments ?? null) } };
  if (!step.ok) return [call, { tool_error: { index: step.index, name: step.name, message: step.error ?? '' } }];
  const thumbs = await Promise.all((step.result_images ?? []).map((img) => encodeJpeg(img, 160, 75)));
  const [x1, y1, x2, y2] = step.box ?? [0, 0, 0, 0];
  return [call, {
    tool_result: {
      index: step.index, name: step.name, box: step.box ? { x1, y1, x2, y2 } : undefined, target_image: step.target_image ?? 0, frames: step.frames ?? [],
      width: step.result_size?.[0] ?? 0, height: step.result_size?.[1] ?? 0, thumbnails_jpeg: thumbs, result_text: step.result_text, added_tokens: step.added_tokens,
    },
  }];
}

function finalOf(r: GenerationResult) {
  const { content, reasoning } = splitTurns(r);
  const { prompt_tokens, completion_tokens, total_tokens } = r.usage;
  return { final: { content, reasoning: reasoning ?? '', finish_reason: r.finishReason }, usage: { prompt_tokens, completion_tokens, total_tokens } };
}

export interface GrpcHandle {
  port: number;
  setServing(serving: boolean): void;
  close(graceMs?: number): Promise<void>;
}

/** The gRPC front end: PixelReasoner (streaming + unary), grpc.health.v1.Health and server reflection. */
export async function startGrpcServer(opts: { host: string; port: number; config: ServerConfig; logger: Logger; model: () => ServingModel }): Promise<GrpcHandle> {
  const definition = protoLoader.loadSync(['pixelreasoner/v1/reasoning.proto', 'grpc/health/v1/health.proto'], {
    keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR],
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    pixelreasoner: { v1: { PixelReasoner: { service: grpc.ServiceDefinition } } };
    grpc: { health: { v1: { Health: { service: grpc.ServiceDefinition } } } };
  };
  let serving = false;
  const watchers = new Set<grpc.ServerWritableStream<{ service: string }, unknown>>();
  const healthStatus = (service: string) => (service === '' || service === SERVICE ? (serving ? 'SERVING' : 'NOT_SERVING') : undefined);

  const authorized = (md: grpc.Metadata) => opts.config.apiKeys.length === 0 || opts.config.apiKeys.some((k) => md.get('authorization').includes(`Bearer ${k}`));

  /** Runs one request; `onStep` receives each step message in order. */
  async function run(call: grpc.ServerUnaryCall<ProtoRequest, unknown> | grpc.ServerWritableStream<ProtoRequest, unknown>, onStep?: (m: Record<string, unknown>) => void) {
    if (!authorized(call.metadata)) throw new ApiError(401, 'Invalid or missing API key (metadata "authorization: Bearer <key>").', 'invalid_api_key');
    if (!serving) throw Object.assign(new Error('server is shutting down'), { grpcCode: grpc.status.UNAVAILABLE });
    const body = parseRequest(ChatCompletionRequest, toChatBody(call.request));
    const messages = await toEngineMessages(body, opts.config);
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort());
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : typeof deadline === 'number' && Number.isFinite(deadline) ? deadline - Date.now() : Infinity;
    let deadlineHit = false;
    const timer = Number.isFinite(ms) ? setTimeout(() => { deadlineHit = true; abort.abort(); }, Math.max(0, ms)).unref() : undefined;
    let queue = Promise.resolve();
    const steps: Record<string, unknown>[] = [];
    try {
      const result = await opts.model().engine.generate(toGenerationRequest(body, messages, opts.config), {
        signal: abort.signal,
        onEvent: (e) => {
          if (e.type === 'text') queue = queue.then(() => onStep?.({ text: { text: e.delta } }));
          else if (e.type === 'tool') queue = queue.then(async () => (await toolMessages(e.step)).forEach((m) => { steps.push(m); onStep?.(m); }));
        },
      }).catch(mapEngineError);
      await queue;
      if (deadlineHit) throw new Error('deadline');
      return { result, steps };
    } catch (e) {
      throw Object.assign(e instanceof Error ? e : new Error(String(e)), { deadlineHit });
    } finally {
      clearTimeout(timer);
    }
  }

  const fail = (e: unknown) => {
    const err = e as { grpcCode?: number; deadlineHit?: boolean; message?: string };
    if (err.grpcCode !== undefined) return { code: err.grpcCode, details: err.message };
    return grpcError(e, err.deadlineHit ?? false);
  };

  const server = new grpc.Server();
  server.addService(loaded.pixelreasoner.v1.PixelReasoner.service, {
    StreamReasoning: (call: grpc.ServerWritableStream<ProtoRequest, unknown>) => {
      run(call, (m) => call.write(m))
        .then(({ result }) => {
          const { final, usage } = finalOf(result);
          call.write({ final });
          call.write({ usage });
          call.end();
        })
        .catch((e: unknown) => {
          if (!call.cancelled) call.emit('error', fail(e));
        });
    },
    Reason: (call: grpc.ServerUnaryCall<ProtoRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      run(call)
        .then(({ result, steps }) => {
          const { final, usage } = finalOf(result);
          callback(null, {
            final, usage,
            tool_calls: steps.flatMap((s) => (s.tool_call ? [s.tool_call] : [])),
            tool_results: steps.flatMap((s) => (s.tool_result ? [s.tool_result] : [])),
            tool_errors: steps.flatMap((s) => (s.tool_error ? [s.tool_error] : [])),
          });
        })
        .catch((e: unknown) => callback(fail(e) as grpc.ServiceError));
    },
  });
  server.addService(loaded.grpc.health.v1.Health.service, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const status = healthStatus(call.request.service);
      if (!status) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` } as grpc.ServiceError);
      else callback(null, { status });
    },
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      call.write({ status: healthStatus(call.request.service) ?? 'SERVICE_UNKNOWN' });
      watchers.add(call);
      call.on('cancelled', () => watchers.delete(call));
    },
  });
  new ReflectionService(definition).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    setServing(s: boolean) {
      serving = s;
      for (const w of watchers) w.write({ status: healthStatus(w.request.service) ?? 'SERVICE_UNKNOWN' });
    },
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        for (const w of watchers) w.end();
        watchers.clear();
        if (graceMs <= 0) {
          server.forceShutdown();
          resolve();
          return;
        }
        const force = setTimeout(() => server.forceShutdown(), graceMs).unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
