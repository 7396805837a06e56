import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { ONNX_FILES } from '../../src/model/model-dir.js';
import { preprocessFrames, type VisualInput } from '../../src/model/processor/image-processor.js';
import { pixelValues } from '../../src/model/processor/patchify.js';
import { openTestModel, testImage } from '../helpers.js';

test('encodeVisual of several inputs in one call (a shared frame, a video) equals the vision graph run directly on their pixel values', async () => {
  const { files, model } = await openTestModel('tiny', 3);
  const p = files.config.processor;
  try {
    const a = await preprocessFrames([await testImage(120, 90, 1)], p);
    const video = await preprocessFrames([await testImage(64, 96, 2), await testImage(64, 96, 3), await testImage(64, 96, 4)], p);
    const b = await preprocessFrames([await testImage(90, 150, 5)], p);
    const inputs: VisualInput[] = [a, video, b, a];
    const ours = await model.encodeVisual(inputs);

    // The oracle: the exported graph in a session of this test's own, fed pixel values patchified on their own.
    const session = await ort.InferenceSession.create(join(files.dir, ONNX_FILES.vision));
    const rows = inputs.map((x) => pixelValues(x, p));
    const total = rows.reduce((n, r) => n + r.length, 0);
    const pixels = new Float32Array(total);
    rows.reduce((o, r) => (pixels.set(r, o), o + r.length), 0);
    const rowLen = rows[0]!.length / (a.grid[0] * a.grid[1] * a.grid[2]);
    const out = await session.run({
      pixel_values: new ort.Tensor('float32', pixels, [total / rowLen, rowLen]),
      image_grid_thw: new ort.Tensor('int64', BigInt64Array.from(inputs.flatMap((x) => x.grid.map(BigInt))), [inputs.length, 3]),
    });
    await session.release();
    const expected = out.image_features!.data as Float32Array;
    assert.equal(ours.reduce((n, f) => n + f.length, 0), expected.length);
    // Not bit for bit: the sessions' thread counts may split the sums differently.
    let at = 0;
    ours.forEach((f, i) => {
      let diff = 0;
      for (let k = 0; k < f.length; k++) diff = Math.max(diff, Math.abs(f[k]! - expected[at + k]!));
      assert.ok(diff <= 1e-5, `input ${i}: max abs diff ${diff}`);
      at += f.length;
    });
    assert.deepEqual(ours[3], ours[0], 'the image listed twice encodes the same');
  } finally {
    await model.release();
  }
});

test('concurrent encodeVisual calls: at most two patchified ahead of the runtime, each with the features of a call alone', async () => {
  const { files, model } = await openTestModel('tiny', 3);
  try {
    const inputs = await Promise.all(Array.from({ length: 10 }, async (_, i) => preprocessFrames([await testImage(90 + 14 * i, 70 + 9 * i, 10 + i)], files.config.processor)));
    const alone: Float32Array[] = [];
    for (const x of inputs) alone.push((await model.encodeVisual([x]))[0]!);
    let most = 0;
    let done = false;
    const watch = (async () => {
      while (!done) {
        most = Math.max(most, model.visionCallsInFlight);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const together = await Promise.all(inputs.map(async (x) => {
      const [f] = await model.encodeVisual([x]);
      most = Math.max(most, model.visionCallsInFlight);
      return f!;
    }));
    done = true;
    await watch;
    assert.ok(most >= 1 && most <= 2, `${most} calls in flight at once`);
    together.forEach((f, i) => assert.deepEqual(f, alone[i], `input ${i}`));
  } finally {
    await model.release();
  }
});
