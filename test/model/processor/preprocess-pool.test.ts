import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import type { ProcessorConfig } from '../../../src/model/config.js';
import { cropRegion, type RgbImage } from '../../../src/tools/image.js';
import { preprocessFrames, type VisualInput } from '../../../src/model/processor/image-processor.js';
import { closePreprocessPool, runPatchify, WORKERS_ENV } from '../../../src/model/processor/preprocess-pool.js';
import { patchGrid, pixelValues } from '../../../src/model/processor/patchify.js';
import { ReusableBuffers } from '../../../src/util/reusable-buffers.js';
import { WorkerPool } from '../../../src/util/worker-pool.js';
import { until } from '../../helpers.js';

const MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
const SHARP: ProcessorConfig = { min_pixels: 3136, max_pixels: 12845056, patch_size: 14, merge_size: 2, temporal_patch_size: 2, image_mean: MEAN, image_std: STD };
const PIL: ProcessorConfig = { ...SHARP, resize_backend: 'pil' };

after(closePreprocessPool);

/** A deterministic, textured RGB image (so resizing and normalising are exercised on varied bytes). */
function image(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed * 2654435761 + 1;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      data[i++] = (x * 3 + seed * 17) & 255;
      data[i++] = (y * 5 + (s >>> 24)) & 255;
      data[i++] = ((x ^ y) + seed) & 255;
    }
  }
  return { data, width, height };
}

/** Runs fn with the pool size env set (0: inline), restoring it after. */
async function withWorkers<T>(n: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env[WORKERS_ENV];
  if (n === undefined) delete process.env[WORKERS_ENV];
  else process.env[WORKERS_ENV] = n;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env[WORKERS_ENV];
    else process.env[WORKERS_ENV] = saved;
  }
}

const inline = (frames: RgbImage[], p: ProcessorConfig, budget?: { min: number; max: number }) => withWorkers('0', () => preprocessFrames(frames, p, budget));
const pooled = (frames: RgbImage[], p: ProcessorConfig, budget?: { min: number; max: number }) => withWorkers('2', () => preprocessFrames(frames, p, budget));

const bytes = (x: ArrayBufferView) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

function assertSame(a: VisualInput, b: VisualInput, what: string): void {
  const shape = (x: VisualInput) => ({ ...x, frames: x.frames.map((f) => [f.width, f.height]) });
  assert.deepEqual(shape(a), shape(b), what);
  a.frames.forEach((f, i) => assert.ok(bytes(f.data).equals(bytes(b.frames[i]!.data)), `${what}: frame ${i} differs`));
}

test('worker output equals inline output bit for bit: PIL and sharp backends, an image and a 3-frame video', async () => {
  const img = image(333, 257, 1);
  const video = [image(160, 120, 2), image(160, 120, 3), image(160, 120, 4)];
  const budget = { min: 3136, max: 60000 };
  const before = [img, ...video].map((f) => Buffer.from(f.data));
  for (const [name, p] of [['pil', PIL], ['sharp', SHARP]] as const) {
    assertSame(await pooled([img], p), await inline([img], p), `${name} image`);
    const v = await pooled(video, p, budget);
    assert.equal(v.grid[0], 2, 'three frames pad to two temporal groups');
    assertSame(v, await inline(video, p, budget), `${name} video`);
  }
  // The caller's images are copied, not transferred: they stay intact for later crops.
  [img, ...video].forEach((f, i) => assert.ok(Buffer.from(f.data).equals(before[i]!), `frame ${i} unchanged`));
});

test('patchify in a worker (large inputs) and inline (small) equals pixelValues; the pixel buffer is the one taken, the frames intact', async () => {
  const input = (frames: RgbImage[]): VisualInput => {
    const { width, height } = frames[0]!;
    const grid = patchGrid(frames.length, width, height, SHARP);
    return { frames, width, height, grid, numTokens: (grid[0] * grid[1] * grid[2]) / 4 };
  };
  const shared = image(616, 476, 7); // 293k pixels: over the inline limit on its own
  const large = [input([shared]), input([image(308, 224, 8), image(308, 224, 9), image(308, 224, 10)]), input([shared])];
  const small = [input([image(56, 28, 11)]), input([image(28, 84, 12)])];
  const before = large.flatMap((x) => x.frames).map((f) => Buffer.from(f.data));
  for (const [name, inputs] of [['large', large], ['small', small]] as const) {
    const expected = Buffer.concat(inputs.map((x) => bytes(pixelValues(x, SHARP))));
    for (const workers of ['2', '0']) {
      const out = new ReusableBuffers();
      const pixels = await withWorkers(workers, () => runPatchify(inputs, SHARP, out));
      assert.equal(pixels.length * 4, expected.length, `${name}, ${workers} workers: length`);
      assert.ok(bytes(pixels).equals(expected), `${name}, ${workers} workers: pixel values`);
      out.give(pixels.buffer);
      assert.equal(out.take(expected.length), pixels.buffer, 'the buffer given back is reused');
    }
  }
  large.flatMap((x) => x.frames).forEach((f, i) => assert.ok(Buffer.from(f.data).equals(before[i]!), `frame ${i} unchanged`));
});

test('a patchify does not wait behind resizes: it has workers of its own (the model\'s runtime is blocked on it)', async () => {
  await closePreprocessPool(); // the next resize starts a pool of one worker
  const frame = image(616, 476, 7);
  const grid = patchGrid(1, frame.width, frame.height, SHARP);
  const input: VisualInput = { frames: [frame], width: frame.width, height: frame.height, grid, numTokens: (grid[0] * grid[1] * grid[2]) / 4 };
  const done: string[] = [];
  await withWorkers('1', async () => {
    try {
      // Both workers started before the race (a worker's start takes longer than the work), the pixel buffer given back.
      const out = new ReusableBuffers();
      await Promise.all([preprocessFrames([image(1201, 901, 19)], PIL), runPatchify([input], SHARP, out).then((px) => out.give(px.buffer))]);
      // Two PIL resizes (~40 ms each): one runs, one queues; then a patchify (~3 ms) large enough for a worker.
      const sources = [20, 21].map((seed) => image(1201, 901, seed)); // made before the race: ~15 ms each on this thread
      const resizes = sources.map((source) => preprocessFrames([source], PIL).then(() => done.push('resize')));
      const patchify = runPatchify([input], SHARP, out).then(() => done.push('patchify'));
      await Promise.all([...resizes, patchify]);
    } finally {
      await closePreprocessPool(); // the tests after this one start their own pools
    }
  });
  // In the resize pool it would end second at best (after the running resize), third behind the queue.
  assert.equal(done[0], 'patchify', `completion order: ${done.join(' ')}`);
});

test('a crop sent to a worker is read row by row from its source: the same pixels as its copy, resized or patchified', async () => {
  const source = image(900, 700, 13);
  const crop = cropRegion(source, 137, 91, 811, 604); // 674x513: over the inline limits, so the pool runs both
  const copy = { data: Uint8Array.from(cropRegion(source, 137, 91, 811, 604).data), width: crop.width, height: crop.height };
  for (const [name, p] of [['pil', PIL], ['sharp', SHARP]] as const) assertSame(await pooled([crop], p), await inline([copy], p), `${name} resize of a crop`);
  assert.equal((crop as unknown as { copied?: Uint8Array }).copied, undefined, 'the crop\'s rows were not copied out of its source');
  const input = (f: RgbImage): VisualInput => {
    const grid = patchGrid(1, 672, 504, SHARP);
    return { frames: [f], width: 672, height: 504, grid, numTokens: (grid[0] * grid[1] * grid[2]) / 4 };
  };
  const exact = cropRegion(source, 100, 100, 772, 604); // patchify takes frames already at the target size
  const pixels = await withWorkers('2', () => runPatchify([input(exact)], SHARP, new ReusableBuffers()));
  assert.ok(bytes(pixels).equals(bytes(pixelValues(input({ data: Uint8Array.from(exact.data), width: 672, height: 504 }), SHARP))), 'patchify of a crop');
});

test('many concurrent calls each get their own result', async () => {
  const inputs = Array.from({ length: 12 }, (_, i) => ({ frames: [image(100 + i * 23, 90 + i * 11, i)], p: i % 2 ? PIL : SHARP }));
  const expected: VisualInput[] = [];
  for (const { frames, p } of inputs) expected.push(await inline(frames, p));
  const results = await withWorkers('2', () => Promise.all(inputs.map(({ frames, p }) => preprocessFrames(frames, p))));
  results.forEach((r, i) => assertSame(r, expected[i]!, `call ${i}`));
});

test('the event loop stays responsive while a 2000x1500 PIL image is preprocessed', async () => {
  const big = image(2000, 1500, 5);
  await pooled([big], PIL); // workers started and a copy buffer of this size kept: the measure is of a steady-state preprocess
  const measure = async (run: typeof inline) => {
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const tick = () => new Promise((resolve) => setTimeout(resolve, 20));
    await tick(); // the monitor measures from its first tick
    const t0 = performance.now();
    const r = await run([big], PIL);
    const ms = performance.now() - t0;
    // The monitor's timer records a delay when it next fires: let it, before reading.
    await tick();
    h.disable();
    return { r, ms, maxDelayMs: h.max / 1e6 };
  };
  const off = await measure(pooled);
  const on = await measure(inline);
  console.log(`2000x1500 PIL preprocess: in a worker ${off.ms.toFixed(0)} ms, max event-loop delay ${off.maxDelayMs.toFixed(1)} ms; inline ${on.ms.toFixed(0)} ms, max delay ${on.maxDelayMs.toFixed(1)} ms`);
  assertSame(off.r, on.r, 'big image');
  assert.ok(on.maxDelayMs > on.ms / 2, 'the monitor sees an inline preprocess block the loop');
  assert.ok(off.maxDelayMs < off.ms / 4, `max delay ${off.maxDelayMs} ms vs ${off.ms} ms preprocess`);
});

test('a frame whose data is short is rejected before it is posted; the other call and the pool go on', async () => {
  const bad = { data: new Uint8Array(10), width: 50, height: 50 };
  const good = image(120, 80, 6);
  const [failed, ok] = await withWorkers('2', () => Promise.allSettled([preprocessFrames([bad], PIL), preprocessFrames([good], PIL)]));
  assert.equal(failed.status, 'rejected');
  assert.match(String((failed as PromiseRejectedResult).reason), /frame data is 10 bytes/);
  assert.equal(ok.status, 'fulfilled');
  assertSame(await pooled([good], PIL), await inline([good], PIL), 'after a failure');
});

test('a worker that crashes fails only the task it held and is replaced', async () => {
  const pool = new WorkerPool(new URL('./fixtures/pool-test-worker.ts', import.meta.url), 2);
  try {
    const [slow, exited, thrown] = await Promise.allSettled([
      pool.run({ op: 'echo', value: 'slow', busyMs: 300 }),
      pool.run({ op: 'exit' }),
      pool.run({ op: 'throw' }),
    ]);
    assert.deepEqual(slow, { status: 'fulfilled', value: 'slow' });
    assert.match(String((exited as PromiseRejectedResult).reason), /exited with code 7/);
    const err = (thrown as PromiseRejectedResult).reason as Error;
    assert.equal(err.name, 'RangeError');
    assert.match(err.message, /task failed/);
    await assert.rejects(pool.run({ op: 'unclonable' }), /could not be cloned/);
    // A worker that crashes while idle leaves the pool too.
    assert.equal(await pool.run({ op: 'crash-after', value: 1 }), 1);
    const live = pool.workers;
    await until(() => pool.workers === live - 1);
    // Both crashed workers were replaced: two tasks run side by side again.
    assert.deepEqual(await Promise.all([pool.run({ op: 'echo', value: 'a' }), pool.run({ op: 'echo', value: 'b' })]), ['a', 'b']);
  } finally {
    await pool.close();
  }
});

test('the worker loads under register() (as bin/pixelreasoner.js) and under --import tsx, and the process exits', async () => {
  const run = promisify(execFile);
  const child = (args: string[]) => run(process.execPath, args, { cwd: new URL('./fixtures/', import.meta.url), timeout: 60_000 });
  const viaRegister = await child(['register-child.mjs']);
  const viaImport = await child(['--import', 'tsx', 'preprocess-child.ts']);
  const sha = (await import('node:crypto')).createHash('sha256');
  const data = Uint8Array.from({ length: 300 * 200 * 3 }, (_, i) => (i * 7) % 251);
  const p: ProcessorConfig = { ...PIL, max_pixels: 1e6, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] };
  const r = await inline([{ data, width: 300, height: 200 }], p);
  const expected = JSON.stringify({ grid: r.grid, sha: sha.update(pixelValues(r, p)).digest('hex') });
  assert.equal(viaRegister.stdout.trim(), expected);
  assert.equal(viaImport.stdout.trim(), expected);
});
