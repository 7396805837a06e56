import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import request from 'supertest';
import { Registry } from 'prom-client';
import { createApp } from '../../src/server/app.js';
import { resolveConfig } from '../../src/server/config.js';
import { createLogger } from '../../src/server/logger.js';
import { loadServingModel, type RunningServer } from '../../src/server/server.js';
import type { ServingModel } from '../../src/server/app.js';
import { startTestServer, testModel, until } from '../helpers.js';

/**
 * The API-key matrix (README: "Bearer keys required on /v1/*, /tokenize, /detokenize and gRPC"):
 * route-level through supertest on the express app (no listening server needed), and gRPC on a
 * real server, where the transport is the point.
 */
const KEY = 'k1';
let model: ServingModel;
let app: ReturnType<typeof createApp>;

before(async () => {
  const config = resolveConfig({ apiKeys: [KEY], logLevel: 'silent', threads: 1, model: await testModel() }, {});
  model = await loadServingModel(config.model, config);
  app = createApp({ config, logger: createLogger('silent'), model: () => model, registry: new Registry(), ready: () => true });
});
after(() => model.engine.release());

const ROUTES: { method: 'get' | 'post'; path: string; body?: unknown }[] = [
  { method: 'get', path: '/v1/models' },
  { method: 'post', path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 } },
  { method: 'post', path: '/tokenize', body: { prompt: 'hello' } },
  { method: 'post', path: '/detokenize', body: { tokens: [1, 2] } },
];

for (const r of ROUTES) {
  test(`${r.method.toUpperCase()} ${r.path}: 401 with no key and with a wrong key (OpenAI error shape), served with the key`, async () => {
    const call = (auth?: string) => {
      const req = r.method === 'get' ? request(app).get(r.path) : request(app).post(r.path).send(r.body as object);
      return auth ? req.set('authorization', auth) : req;
    };
    for (const auth of [undefined, 'Bearer wrong', KEY]) {
      const res = await call(auth);
      assert.equal(res.status, 401, `${auth ?? 'no header'}: ${res.status}`);
      assert.equal(res.body.error.type, 'authentication_error');
      assert.equal(typeof res.body.error.message, 'string');
    }
    const ok = await call(`Bearer ${KEY}`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });
}

test('health and metrics stay open without a key', async () => {
  assert.equal((await request(app).get('/health')).status, 200);
  assert.equal((await request(app).get('/metrics')).status, 200);
});

let server: RunningServer;
test('gRPC: UNAUTHENTICATED with no key or a wrong one, served with the key in the authorization metadata', async () => {
  server = await startTestServer({ grpcPort: 0, apiKeys: [KEY] });
  const client = grpcClient(server.grpcPort!);
  const call = (auth?: string) => {
    const md = new grpc.Metadata();
    if (auth) md.set('authorization', auth);
    return grpcOutcome(client, md);
  };
  try {
    assert.equal((await call())?.code, grpc.status.UNAUTHENTICATED);
    assert.equal((await call('Bearer wrong'))?.code, grpc.status.UNAUTHENTICATED);
    assert.equal(await call(`Bearer ${KEY}`), undefined);
  } finally {
    client.close();
    await server.close();
  }
});

/** A PixelReasoner gRPC client for a test server. */
function grpcClient(port: number): any {
  const def = protoLoader.loadSync(['pixelreasoner/v1/reasoning.proto'], { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [join(import.meta.dirname, '../../proto')] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return new pkg.pixelreasoner.v1.PixelReasoner(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** One short gRPC request; resolves with its error, or undefined when it ended normally. */
function grpcOutcome(client: any, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<grpc.ServiceError | undefined> {
  return new Promise((resolve) => {
    const stream = client.StreamReasoning({ messages: [{ role: 'user', content: [{ text: 'hi' }] }], sampling: { max_tokens: 2 } }, metadata, options) as grpc.ClientReadableStream<unknown>;
    stream.on('data', () => {});
    stream.on('error', resolve);
    stream.on('end', () => resolve(undefined));
  });
}

/**
 * A server with one sequence slot, held over HTTP by a stream that only ends when released, and a
 * gRPC client to it: what runs next waits for that slot (or is refused past maxWaiting).
 */
async function withHeldSlot(maxWaiting: number, body: (s: RunningServer, client: any) => Promise<void>): Promise<void> {
  const s = await startTestServer({ grpcPort: 0, maxNumSeqs: 1, maxWaiting });
  const client = grpcClient(s.grpcPort!);
  const hold = new AbortController();
  try {
    const long = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: hold.signal,
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 100000, ignore_eos: true, stream: true }),
    });
    await long.body!.getReader().read();
    await body(s, client);
  } finally {
    hold.abort();
    client.close();
    await s.close();
  }
}

test('past max_waiting: HTTP 429 with code server_overloaded and Retry-After; gRPC RESOURCE_EXHAUSTED', () => withHeldSlot(0, async (s, client) => {
  const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }) });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '1');
  assert.deepEqual(((await res.json()) as { error: { code: string; type: string } }).error.code, 'server_overloaded');
  assert.equal((await grpcOutcome(client))?.code, grpc.status.RESOURCE_EXHAUSTED);
}));

// The slot is held by a request that never ends by itself, so the deadlined one cannot finish however fast the machine is.
test('gRPC deadline: a request still queued for the only slot when its deadline passes gets DEADLINE_EXCEEDED', () => withHeldSlot(4, async (s, client) => {
  assert.equal((await grpcOutcome(client, new grpc.Metadata(), { deadline: Date.now() + 300 }))?.code, grpc.status.DEADLINE_EXCEEDED);
  await until(() => s.model().engine.counts().waiting === 0);
}));

test('requestTimeoutMs: a request past its deadline ends with finish_reason abort, and its slot is freed', async () => {
  const s = await startTestServer({ requestTimeoutMs: 1, maxNumSeqs: 2 });
  try {
    // A request that cannot finish by itself (no EOS, a huge budget): only the deadline ends it.
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 100000, ignore_eos: true }),
    });
    const body = (await res.json()) as { choices: { finish_reason: string }[] };
    assert.equal(body.choices[0]!.finish_reason, 'abort');
    assert.equal(s.model().engine.slots.free, 2);
  } finally {
    await s.close();
  }
});
