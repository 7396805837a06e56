import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { OnnxModel } from '../../src/engine/onnx-model.js';
import { buildPrompt } from '../../src/engine/prompt.js';
import { ChatTokenizer } from '../../src/model/chat-tokenizer.js';
import { loadWeights } from '../../src/model/load-weights.js';
import { loadModelFiles } from '../../src/model/model-dir.js';
import { decodeImage } from '../../src/tools/image.js';
import { RopePositions } from '../../src/model/processor/rope-index.js';
import { featurize, makeBatch } from '../../src/training/batch.js';
import { openGraph } from '../../src/training/session.js';
import { buildTrainingGraph } from '../../src/training/train-graph.js';
import { Rng } from '../../src/util/random.js';
import { testImagePng, testModel } from '../helpers.js';

test('the training graph forward gives the served decoder logits (image prompt, several prefix lengths)', async () => {
  const files = await loadModelFiles(await testModel('micro', 3));
  const runner = await OnnxModel.load(files, { threads: 1, forceStandard: true });
  const tok = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const image = await decodeImage(await testImagePng(300, 200, 1), { maxPixels: 1e7 });
  const prompt = await buildPrompt([{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'What is here?' }] }], ['crop_image_normalized'], tok, files.config, new RopePositions());
  const weightsAll = await loadWeights(files.dir);
  const { graph, params } = buildTrainingGraph(files.config.text, { logits: true, backward: false });
  const session = await openGraph(graph, { threads: 1 });
  const trace = { ids: prompt.chunk.ids, positions: prompt.chunk.positions, weights: prompt.chunk.ids.map(() => 1), visuals: prompt.chunk.visuals };
  const example = await featurize(trace, runner);
  const batch = makeBatch([{ ...example, ids: [...example.ids, 0], weights: [...example.weights, 0], positions: example.positions.map((p) => [...p, 0]) as [number[], number[], number[]] }], files.config.text.hidden_size);
  const feeds = { ...batch.feeds, ...Object.fromEntries(params.map((p) => [p, new ort.Tensor('float32', weightsAll.get(p)!.data, weightsAll.get(p)!.dims)])) };
  const logits = (await session.run(feeds, ['logits'])).logits!.data as Float32Array;
  const v = files.config.text.vocab_size;
  const h = files.config.text.hidden_size;
  const n = prompt.chunk.ids.length;
  let worst = 0;
  for (const len of [prompt.chunk.visuals[0]!.start + 3, Math.floor(n / 2), n]) {
    const embeds = await runner.embed(prompt.chunk.ids.slice(0, len));
    for (const vis of example.visuals) {
      const count = Math.min(vis.features.length / h, len - vis.start);
      if (count > 0) embeds.set(vis.features.subarray(0, count * h), vis.start * h);
    }
    const pos = BigInt64Array.from(prompt.chunk.positions.flatMap((p) => p.slice(0, len).map(BigInt)));
    const served = (await runner.forward(embeds, pos, runner.emptyCache())).logits;
    for (let k = 0; k < v; k++) worst = Math.max(worst, Math.abs(served[k]! - logits[(len - 1) * v + k]!));
  }
  await session.release();
  await runner.release();
  console.log(`max |logit difference| vs the served decoder: ${worst}`);
  assert.ok(worst <= 1e-4, `max |logit difference| ${worst}`);
});

test('whole-model loss gradients (text params and visual features) match central differences (micro model, float64, padded batch)', async () => {
  const files = await loadModelFiles(await testModel('micro', 4));
  const c = files.config.text;
  const weights = await loadWeights(files.dir);
  const { graph, params } = buildTrainingGraph(c, { floatType: 'float64', visualGrad: true });
  const session = await openGraph(graph, { threads: 1 });
  const rng = new Rng(11);
  const [b, s, h] = [2, 9, c.hidden_size];
  const ids = BigInt64Array.from({ length: b * s }, () => BigInt(rng.int(60)));
  const labels = BigInt64Array.from({ length: b * s }, () => BigInt(rng.int(c.vocab_size)));
  const mask = BigInt64Array.from({ length: b * s }, (_, k) => (k >= s + 6 ? 0n : 1n));
  const positions = BigInt64Array.from({ length: 3 * b * s }, (_, k) => BigInt((k % s) + (k >= 2 * b * s && k % s > 2 ? 1 : 0)));
  const textMask = Float64Array.from({ length: b * s }, (_, k) => (k % s === 3 || k % s === 4 ? 0 : 1));
  const visual = Float64Array.from({ length: b * s * h }, (_, k) => (textMask[Math.floor(k / h)] === 0 ? rng.normal() : 0));
  const lossWeights = Float64Array.from({ length: b * s }, (_, k) => (mask[k] ? (1 + rng.next()) / 10 : 0));
  const values = new Map(params.map((p) => [p, Float64Array.from(weights.get(p)!.data)]));
  const feeds = () => ({
    input_ids: new ort.Tensor('int64', ids, [b, s]), labels: new ort.Tensor('int64', labels, [b, s]),
    attention_mask: new ort.Tensor('int64', mask, [b, s]), position_ids: new ort.Tensor('int64', positions, [3, b, s]),
    text_mask: new ort.Tensor('float64', textMask, [b, s, 1]), visual_embeds: new ort.Tensor('float64', visual, [b, s, h]),
    loss_weights: new ort.Tensor('float64', lossWeights, [b, s]),
    ...Object.fromEntries(params.map((p) => [p, new ort.Tensor('float64', values.get(p)!, weights.get(p)!.dims)])),
  });
  const out = await session.run(feeds());
  const lossAt = async () => ((await session.run(feeds(), ['loss'])).loss!.data as Float64Array)[0]!;
  let diff = 0;
  let norm = 0;
  let checked = 0;
  for (const p of params) {
    const x = values.get(p)!;
    const grad = out[`grad.${p}`]!.data as Float64Array;
    assert.equal(grad.length, x.length);
    let argmax = 0;
    for (let k = 1; k < grad.length; k++) if (Math.abs(grad[k]!) > Math.abs(grad[argmax]!)) argmax = k;
    for (const k of [argmax, rng.int(x.length)]) {
      const saved = x[k]!;
      const eps = 1e-5;
      x[k] = saved + eps;
      const up = await lossAt();
      x[k] = saved - eps;
      const down = await lossAt();
      x[k] = saved;
      const numeric = (up - down) / (2 * eps);
      diff += (grad[k]! - numeric) ** 2;
      norm += numeric ** 2;
      checked++;
      if (k === argmax) assert.ok(Math.abs(grad[k]! - numeric) <= 1e-3 * Math.abs(numeric) + 1e-9, `${p}[${k}]: ${grad[k]} vs ${numeric}`);
    }
  }
  // d loss / d visual_embeds at visual positions (where the vision tower's VJP continues).
  const dVisual = out['grad.visual_embeds']!.data as Float64Array;
  for (const k of [3 * h + 1, 4 * h + 7, (s + 3) * h + 5, (s + 4) * h + 2]) {
    const saved = visual[k]!;
    visual[k] = saved + 1e-5;
    const up = await lossAt();
    visual[k] = saved - 1e-5;
    const down = await lossAt();
    visual[k] = saved;
    const numeric = (up - down) / 2e-5;
    assert.ok(Math.abs(dVisual[k]! - numeric) <= 1e-3 * Math.abs(numeric) + 1e-9, `visual_embeds[${k}]: ${dVisual[k]} vs ${numeric}`);
  }
  await session.release();
  const rel = Math.sqrt(diff / norm);
  console.log(`whole-model gradient: relative error ${rel.toExponential(2)} over ${checked} parameter elements`);
  assert.ok(checked >= 2 * params.length && rel <= 1e-3, `relative error ${rel} over ${checked} elements`);
});
