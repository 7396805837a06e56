import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OnnxModel } from '../../../src/engine/onnx-model.js';
import { loadWeights } from '../../../src/model/load-weights.js';
import { loadModelFiles, writeModelDir } from '../../../src/model/model-dir.js';
import { preprocessFrames } from '../../../src/model/processor/image-processor.js';
import { testModel } from '../../helpers.js';

/** Each kind of added positional features, by its config key, and the weight of its projection. */
const FEATURE_WEIGHTS = {
  coordinate_frequencies: 'visual.coordinate_embed.proj.weight',
  temporal_frequencies: 'visual.temporal_embed.proj.weight',
} as const;

/** A copy of the model at `dir` with one kind of added positional features turned off (K = 0, its projection dropped). */
async function withFeaturesOff(dir: string, key: keyof typeof FEATURE_WEIGHTS): Promise<string> {
  const files = await loadModelFiles(dir);
  const plain = mkdtempSync(join(tmpdir(), `prs-no-${key}-`));
  const weights = await loadWeights(dir);
  weights.delete(FEATURE_WEIGHTS[key]);
  await writeModelDir(plain, { ...files.config, vision: { ...files.config.vision, [key]: 0 } }, weights, files, `no-${key}`);
  return plain;
}

/** Largest distance of any image token's features from the first token's, for a flat grey image. */
async function spreadOnFlatImage(dir: string): Promise<number> {
  const files = await loadModelFiles(dir);
  const runner = await OnnxModel.load(files, { threads: 1 });
  const grey = { data: new Uint8Array(224 * 168 * 3).fill(128), width: 224, height: 168 };
  const [f] = await runner.encodeVisual([await preprocessFrames([grey], files.config.processor)]);
  await runner.release();
  const h = files.config.text.hidden_size;
  let spread = 0;
  for (let t = 1; t < f!.length / h; t++) for (let d = 0; d < h; d++) spread = Math.max(spread, Math.abs(f![t * h + d]! - f![d]!));
  return spread;
}

test('coordinate features tell image tokens apart by position; without them a flat image gives equal tokens', async () => {
  const dir = await testModel('micro', 0);
  const files = await loadModelFiles(dir);
  assert.ok(files.config.vision.coordinate_frequencies! > 0, 'the micro preset uses coordinate features');
  const plain = await withFeaturesOff(dir, 'coordinate_frequencies');
  const [withCoords, without] = [await spreadOnFlatImage(dir), await spreadOnFlatImage(plain)];
  console.log(`flat image, max token feature difference: with coordinates ${withCoords.toExponential(2)}, without ${without.toExponential(2)}`);
  assert.ok(without < 1e-4, `rotary attention alone is position-blind on a flat image (${without})`);
  assert.ok(withCoords > 1e-2, `coordinate features separate the tokens (${withCoords})`);
});

/** Largest feature distance between the first and the last temporal patch of a clip of identical grey frames, token by token. */
async function spreadOverTime(dir: string): Promise<number> {
  const files = await loadModelFiles(dir);
  const runner = await OnnxModel.load(files, { threads: 1 });
  const grey = { data: new Uint8Array(112 * 112 * 3).fill(128), width: 112, height: 112 };
  const input = await preprocessFrames([grey, grey, grey, grey], files.config.processor);
  const [f] = await runner.encodeVisual([input]);
  await runner.release();
  const perGroup = f!.length / input.grid[0];
  let spread = 0;
  for (let i = 0; i < perGroup; i++) spread = Math.max(spread, Math.abs(f![f!.length - perGroup + i]! - f![i]!));
  return spread;
}

async function imageFeatures(dir: string): Promise<Float32Array> {
  const files = await loadModelFiles(dir);
  const runner = await OnnxModel.load(files, { threads: 1 });
  const data = new Uint8Array(112 * 84 * 3).map((_, i) => (i * 37) % 251);
  const [f] = await runner.encodeVisual([await preprocessFrames([{ data, width: 112, height: 84 }], files.config.processor)]);
  await runner.release();
  return f!;
}

test('temporal features tell the frames of a clip apart, and leave an image untouched; without them identical frames give equal tokens', async () => {
  const dir = await testModel('micro', 0);
  const files = await loadModelFiles(dir);
  assert.ok(files.config.vision.temporal_frequencies! > 0, 'the micro preset uses temporal features');
  const plain = await withFeaturesOff(dir, 'temporal_frequencies');
  const [withTime, without] = [await spreadOverTime(dir), await spreadOverTime(plain)];
  console.log(`identical frames, max feature difference first vs last temporal patch: with temporal features ${withTime.toExponential(2)}, without ${without.toExponential(2)}`);
  assert.ok(without < 1e-4, `without temporal features the frames are indistinguishable (${without})`);
  assert.ok(withTime > 1e-2, `temporal features separate the frames (${withTime})`);
  const [image, imageWithout] = [await imageFeatures(dir), await imageFeatures(plain)];
  assert.ok(image.every((v, i) => Math.abs(v - imageWithout[i]!) < 1e-5), 'an image (a one-frame clip) gets no temporal offset');
});
