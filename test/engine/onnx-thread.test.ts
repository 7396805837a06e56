import assert from 'node:assert/strict';
import { test } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ModelRunner, type Chunk } from '../../src/engine/model-runner.js';
import { OnnxModel } from '../../src/engine/onnx-model.js';
import { resolveEngineConfig } from '../../src/engine/engine-config.js';
import { Sequence } from '../../src/engine/sequence.js';
import { argmax, GREEDY } from '../../src/engine/sampler.js';
import { RopePositions } from '../../src/model/processor/rope-index.js';
import { loadModelFiles, type ModelFiles } from '../../src/model/model-dir.js';
import { testModel } from '../helpers.js';

/** A prefill of `s` tokens over an empty slot: the work whose duration the event loop must not wait out. */
async function longRun(model: OnnxModel, files: ModelFiles, s: number): Promise<{ ms: number; maxLagMs: number }> {
  const pool = model.createPool(1, s);
  const feeds = { rows: 1, s, embeds: new Float32Array(s * files.config.text.hidden_size).fill(0.01), positions: new BigInt64Array(3 * s), pastLengths: [0], first: 0, writes: [] };
  await model.runPooled(pool, { ...feeds, embeds: feeds.embeds.slice(), positions: feeds.positions.slice() }); // warm-up
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const t0 = performance.now();
  await model.runPooled(pool, feeds);
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20)); // the sampling timer reports a stall when it next fires
  lag.disable();
  return { ms, maxLagMs: lag.max / 1e6 };
}

test('model calls run off the event loop: a long decoder call leaves it responsive (and on the calling thread it would not)', async () => {
  const files = await loadModelFiles(await testModel('tiny', 5));
  const threaded = await OnnxModel.load(files, { threads: 2 });
  process.env.PIXELREASONER_ONNX_THREAD = '0';
  const local = await OnnxModel.load(files, { threads: 2 }).finally(() => delete process.env.PIXELREASONER_ONNX_THREAD);
  try {
    const off = await longRun(threaded, files, 2000);
    const on = await longRun(local, files, 2000);
    console.log(`# 2000-token call: ONNX thread ${off.ms.toFixed(0)} ms, max event-loop delay ${off.maxLagMs.toFixed(1)} ms; ` +
      `calling thread ${on.ms.toFixed(0)} ms, max delay ${on.maxLagMs.toFixed(1)} ms`);
    // The calling-thread run shows up as a stall, so the measurement itself works.
    assert.ok(on.maxLagMs > on.ms / 2, `in-thread stall ${on.maxLagMs} ms vs run ${on.ms} ms`);
    assert.ok(off.maxLagMs < off.ms / 4, `event loop stalled ${off.maxLagMs} ms during a ${off.ms} ms call`);
  } finally {
    await threaded.release();
    await local.release();
  }
});

test('a failing decoder call leaves the model and its KV pool usable', async () => {
  const files = await loadModelFiles(await testModel('tiny', 5));
  const model = await OnnxModel.load(files, { threads: 1 });
  try {
    const c = files.config.text;
    const pool = model.createPool(2, 64);
    const good = () => ({ rows: 1, s: 2, first: 0, embeds: new Float32Array(2 * c.hidden_size).fill(0.1), positions: new BigInt64Array(6), pastLengths: [0], writes: [{ row: 0, slot: 0, at: 0, n: 2 }] });
    await assert.rejects(model.runPooled(pool, { ...good(), embeds: new Float32Array(3) }));
    const { logits } = await model.runPooled(pool, good());
    assert.equal(logits.length, c.vocab_size);
    const { keys } = await pool.read(0, 0, 2);
    assert.ok(keys[0]!.some((x) => x !== 0), 'the new keys were written into the pool');
  } finally {
    await model.release();
  }
});

test('batched prefill: chunks of different lengths in one padded call give each chunk the logits and KV of its own call', async () => {
  const files = await loadModelFiles(await testModel('tiny', 5));
  const model = await OnnxModel.load(files, { threads: 2 });
  try {
    assert.ok(model.raggedPrefill, 'the exported decoder takes last_index');
    const config = resolveEngineConfig({ maxModelLen: 512, maxNumSeqs: 3, enablePrefixCaching: false });
    const lengths = [37, 41, 30];
    const sequences = () => lengths.map((n, i) => {
      const rope = new RopePositions();
      const chunk = { ids: Array.from({ length: n }, (_, t) => 20 + ((t * 7 + i * 13) % 200)), positions: [[], [], []] as [number[], number[], number[]], visuals: [] };
      rope.text(n, chunk.positions);
      const seq = new Sequence(`s${i}`, { messages: [], sampling: GREEDY, maxTokens: 1, tools: [], maxToolCalls: 0, stop: [] }, chunk, rope,
        { images: [], enabledTools: [], processor: files.config.processor }, { resolve: () => {}, reject: () => {} });
      seq.slot = i;
      return seq;
    });
    const together = new ModelRunner(model, config);
    const a = sequences();
    const batched = await together.prefill(a.map((seq): Chunk => ({ seq, tokens: seq.remainingPending })));
    const alone = new ModelRunner(model, config);
    const b = sequences();
    for (const [i, seq] of b.entries()) {
      const [logits] = await alone.prefill([{ seq, tokens: seq.remainingPending }]);
      let max = 0;
      for (let v = 0; v < logits!.length; v++) max = Math.max(max, Math.abs(logits![v]! - batched[i]![v]!));
      assert.ok(max < 1e-4, `chunk ${i}: |logit difference| ${max}`);
    }
    // The next token decodes identically over the KV each way wrote.
    for (const seqs of [a, b]) for (const s of seqs) s.appendSampled(5);
    const [da, db] = [await together.decode(a), await alone.decode(b)];
    for (let i = 0; i < 3; i++) for (let v = 0; v < 16; v++) assert.ok(Math.abs(da[i]!.logits[v]! - db[i]!.logits[v]!) < 1e-4);

    // Chained: the next decode is posted while this one is in flight, its tokens the greedy ones picked on the runtime.
    for (const seqs of [a, b]) for (const s of seqs) s.appendSampled(7);
    const first = together.decode(a, true);
    const second = together.decode(a, true);
    const picked = (await first).map((row) => row!.greedy!);
    a.forEach((seq, i) => seq.appendSampled(picked[i]!));
    const chained = await second;
    // One at a time: each sequence feeds the same tokens explicitly.
    const explicit = await alone.decode(b);
    explicit.forEach((row, i) => {
      assert.equal(picked[i], argmax(row!.logits), `row ${i}: the runtime's greedy token is the argmax`);
      b[i]!.appendSampled(picked[i]!);
    });
    const next = await alone.decode(b);
    for (let i = 0; i < 3; i++) {
      let max = 0;
      for (let v = 0; v < next[i]!.logits.length; v++) max = Math.max(max, Math.abs(next[i]!.logits[v]! - chained[i]!.logits[v]!));
      assert.ok(max < 1e-4, `row ${i}: chained and explicit logits differ by ${max}`);
      assert.equal(a[i]!.cacheLength, b[i]!.cacheLength);
    }
  } finally {
    await model.release();
  }
});
