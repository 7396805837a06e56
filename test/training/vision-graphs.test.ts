import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OnnxModel } from '../../src/engine/onnx-model.js';
import { loadWeights } from '../../src/model/load-weights.js';
import { loadModelFiles } from '../../src/model/model-dir.js';
import { decodeImage } from '../../src/tools/image.js';
import { preprocessFrames } from '../../src/model/processor/image-processor.js';
import { VisionTrainer } from '../../src/training/vision-graphs.js';
import { Rng } from '../../src/util/random.js';
import { testImagePng, testModel } from '../helpers.js';

test('vision tower in training: forward equals the served encoder, and its VJP matches central differences', async () => {
  const files = await loadModelFiles(await testModel('micro', 6));
  const weights = await loadWeights(files.dir);
  const input = await preprocessFrames([await decodeImage(await testImagePng(120, 90, 2), { maxPixels: 1e7 })], files.config.processor);
  const vision = await VisionTrainer.create(files.config.vision, files.config.processor, 1);
  const runner = await OnnxModel.load(files, { threads: 1 });
  const served = (await runner.encodeVisual([input]))[0]!;
  const features = await vision.features(input, weights);
  assert.equal(features.length, served.length);
  assert.ok(features.every((v, i) => Math.abs(v - served[i]!) <= 1e-5), 'same features as vision_encoder.onnx');
  await runner.release();

  // loss = sum(features * cot): the VJP with cot is d loss / d params. Central differences in float32
  // (ONNX Runtime has no float64 Erf), so a larger step and a looser bound than the float64 tests.
  const rng = new Rng(3);
  const cot = Float32Array.from({ length: features.length }, () => rng.normal());
  const grads = new Map<string, Float32Array>();
  await vision.accumulate(input, cot, weights, grads);
  const lossAt = async () => (await vision.features(input, weights)).reduce((a, v, i) => a + v * cot[i]!, 0);
  let diff = 0;
  let norm = 0;
  for (const p of vision.params) {
    const w = weights.get(p)!.data;
    const g = grads.get(p)!;
    let k = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[k]!)) k = i;
    const saved = w[k]!;
    const eps = 1e-2 * Math.max(1, Math.abs(saved));
    w[k] = saved + eps;
    const up = await lossAt();
    w[k] = saved - eps;
    const down = await lossAt();
    w[k] = saved;
    const numeric = (up - down) / (2 * eps);
    diff += (g[k]! - numeric) ** 2;
    norm += numeric ** 2;
  }
  await vision.release();
  const rel = Math.sqrt(diff / norm);
  console.log(`vision VJP relative error ${rel}`);
  assert.ok(rel <= 1e-2, `relative error ${rel} over the largest-gradient element of ${vision.params.length} params`);
});
