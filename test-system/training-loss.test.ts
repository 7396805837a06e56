import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import sharp from 'sharp';
import { OnnxModel } from '../src/engine/onnx-model.js';
import { appendChunk, buildPrompt, buildToolResultChunk, type PromptChunk } from '../src/engine/prompt.js';
import { ChatTokenizer } from '../src/model/chat-tokenizer.js';
import { loadWeights } from '../src/model/load-weights.js';
import { loadModelFiles, type ModelFiles } from '../src/model/model-dir.js';
import { errorTurnText, executeToolCall } from '../src/tools/operations.js';
import { decodeImage, type RgbImage } from '../src/tools/image.js';
import { RopePositions } from '../src/model/processor/rope-index.js';
import { featurize, makeBatch } from '../src/training/batch.js';
import { openGraph } from '../src/training/session.js';
import { buildTrainingGraph } from '../src/training/train-graph.js';
import { policyGradientBatch } from '../src/training/policy-gradient.js';
import { Trainer } from '../src/training/trainer.js';
import { OPTIMIZER_DEFAULTS } from '../src/training/optimizer.js';
import { testImagePng } from '../test/helpers.js';
import * as ort from 'onnxruntime-node';
import { makeCheckpoint, oracle, oraclePython } from './hf/oracle.js';

/**
 * The training loss and its gradients against PyTorch: a Hugging Face checkpoint (transformers'
 * save_pretrained), converted at fp32 and loaded as training weights; one SFT trace built as the
 * engine runs it (prompt with an image, a failed crop call and its error turn, a good call and
 * its crop, the answer), weights 0 on the prompt, tool results and the failed call, 1 on the rest.
 * Our training graph's loss must equal -Σ w·log p / Σ w computed by transformers on the same
 * weights and tokens (1e-5 relative), and its gradients torch autograd's (1e-3 relative).
 */
const dir = mkdtempSync(join(tmpdir(), 'prs-loss-'));
let python: string;
let snapshot: string;
let files: ModelFiles;

before(async () => {
  python = oraclePython();
  snapshot = join(dir, 'ckpt');
  makeCheckpoint(python, snapshot, 'untied-gqa7-nested', 11);
  files = await loadModelFiles(snapshot, { dtype: 'fp32', cacheDir: join(dir, 'cache'), log: () => {} });
});

/** One trace: its chunks appended with their loss weights, and every image in order (saved as PNG for the oracle). */
async function sftTrace(seed = 21, answer = 'It is red: \\boxed{red}<|im_end|>'): Promise<{ chunk: PromptChunk; weights: number[]; imagePaths: string[] }> {
  const tokenizer = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const png = await testImagePng(560, 420, seed);
  const image = await decodeImage(png, { maxPixels: 1e8 });
  const imagePaths = [join(dir, `image-${seed}-1.png`)];
  writeFileSync(imagePaths[0]!, png);
  const rope = new RopePositions();
  const prompt = await buildPrompt([{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'What colour is the square?' }] }], ['crop_image_normalized'], tokenizer, files.config, rope);
  const trace: PromptChunk = { ids: [], positions: [[], [], []], visuals: [] };
  const weights: number[] = [];
  appendChunk(trace, weights, prompt.chunk, 0);
  const say = (text: string, weight: number) => {
    const ids = tokenizer.encode(text);
    const chunk: PromptChunk = { ids, positions: [[], [], []], visuals: [] };
    rope.text(ids.length, chunk.positions);
    appendChunk(trace, weights, chunk, weight);
  };
  const images: RgbImage[] = [image];
  const call = (bbox: number[]) => `<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [${bbox.join(', ')}], "target_image": 1}}\n</tool_call>`;
  // A failed call (a box too small to crop): in the context, not in the loss.
  say(`Let me zoom.\n${call([0.5, 0.5, 0.5, 0.5])}`, 0);
  const failed = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: [0.5, 0.5, 0.5, 0.5], target_image: 1 }, raw: '' }, { images, enabledTools: ['crop_image_normalized'], processor: files.config.processor });
  assert.equal(failed.ok, false);
  appendChunk(trace, weights, await buildToolResultChunk(errorTurnText(failed.ok ? '' : failed.error), [], tokenizer, files.config, rope), 0);
  say(`The box was empty; again.\n${call([0.2, 0.3, 0.6, 0.7])}`, 1);
  const good = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: [0.2, 0.3, 0.6, 0.7], target_image: 1 }, raw: '' }, { images, enabledTools: ['crop_image_normalized'], processor: files.config.processor });
  assert.ok(good.ok);
  const crop = good.images[0]!;
  imagePaths.push(join(dir, `image-${seed}-2.png`));
  writeFileSync(imagePaths[1]!, await sharp(crop.data, { raw: { width: crop.width, height: crop.height, channels: 3 } }).png().toBuffer());
  appendChunk(trace, weights, await buildToolResultChunk(good.text, good.images, tokenizer, files.config, rope), 0);
  say(answer, 1);
  return { chunk: trace, weights, imagePaths };
}

test('SFT loss and gradients equal transformers + torch autograd on a trace with a masked failed call', async () => {
  const { chunk, weights, imagePaths } = await sftTrace();
  const runner = await OnnxModel.load(files, { threads: 2 });
  const example = await featurize({ ids: chunk.ids, positions: chunk.positions, weights, visuals: chunk.visuals }, runner);
  await runner.release();
  const batch = makeBatch([example], files.config.text.hidden_size);
  const { graph, params } = buildTrainingGraph(files.config.text);
  const session = await openGraph(graph, { threads: 2 });
  const trained = await loadWeights(files.dir);
  const feeds: Record<string, ort.Tensor> = { ...batch.feeds };
  for (const name of params) feeds[name] = new ort.Tensor('float32', trained.get(name)!.data, trained.get(name)!.dims);
  const out = await session.run(feeds);
  const ours = (out.loss!.data as Float32Array)[0]!;
  const checked = CHECKED;
  const theirs = oracle<{ loss: number; grads: Record<string, { shape: number[]; data: number[] }> }>(python, { op: 'loss', model: snapshot, ids: chunk.ids, weights, images: imagePaths, params: checked });
  assert.ok(weights.some((w) => w === 0) && weights.some((w) => w === 1));
  assert.ok(Math.abs(ours - theirs.loss) <= 1e-5 * Math.abs(theirs.loss), `loss ${ours} against transformers' ${theirs.loss}`);
  assertSameGradients(out, trained, theirs.grads, checked);
  console.error(`# loss ${ours} against ${theirs.loss} (relative ${(Math.abs(ours - theirs.loss) / Math.abs(theirs.loss)).toExponential(1)})`);
  await session.release();
});

test('a tied checkpoint (Qwen2.5-VL-3B style) trains its embedding as one tensor: its gradient is torch\'s, both uses summed', async () => {
  const tiedSnapshot = join(dir, 'tied');
  makeCheckpoint(python, tiedSnapshot, 'tied-gqa2-legacy', 13);
  const tied = await loadModelFiles(tiedSnapshot, { dtype: 'fp32', cacheDir: join(dir, 'cache'), log: () => {} });
  assert.equal(tied.config.text.tie_word_embeddings, true);
  const { chunk, weights, imagePaths } = await sftTrace(41);
  const runner = await OnnxModel.load(tied, { threads: 2 });
  const example = await featurize({ ids: chunk.ids, positions: chunk.positions, weights, visuals: chunk.visuals }, runner);
  await runner.release();
  const batch = makeBatch([example], tied.config.text.hidden_size);
  const { graph, params } = buildTrainingGraph(tied.config.text);
  assert.ok(!params.includes('lm_head.weight'), 'a tied model\'s training graph has no separate LM head');
  const session = await openGraph(graph, { threads: 2 });
  const trained = await loadWeights(tied.dir);
  const feeds: Record<string, ort.Tensor> = { ...batch.feeds };
  for (const name of params) feeds[name] = new ort.Tensor('float32', trained.get(name)!.data, trained.get(name)!.dims);
  const out = await session.run(feeds);
  const checked = ['model.embed_tokens.weight', 'model.layers.1.mlp.up_proj.weight'];
  const theirs = oracle<{ loss: number; grads: Record<string, { shape: number[]; data: number[] }> }>(python, { op: 'loss', model: tiedSnapshot, ids: chunk.ids, weights, images: imagePaths, params: checked });
  const ours = (out.loss!.data as Float32Array)[0]!;
  assert.ok(Math.abs(ours - theirs.loss) <= 1e-5 * Math.abs(theirs.loss), `loss ${ours} against transformers' ${theirs.loss}`);
  assertSameGradients(out, trained, theirs.grads, checked);
  await session.release();
});

const CHECKED = ['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.k_proj.bias', 'model.layers.1.mlp.down_proj.weight', 'model.norm.weight', 'lm_head.weight', 'model.embed_tokens.weight'];

/** Our gradients (Linear weights [in, out]) against torch's ([out, in]), within 1e-3 relative (L2). */
function assertSameGradients(out: ort.InferenceSession.ReturnType, trained: Map<string, { dims: number[] }>, grads: Record<string, { data: number[] }>, names: string[]): void {
  for (const name of names) {
    const g = out[`grad.${name}`]!.data as Float32Array;
    const dims = trained.get(name)!.dims;
    const at = dims.length === 2 && name !== 'model.embed_tokens.weight' ? (i: number) => g[(i % dims[0]!) * dims[1]! + Math.floor(i / dims[0]!)]! : (i: number) => g[i]!;
    let diff = 0;
    let norm = 0;
    grads[name]!.data.forEach((r, i) => { diff += (at(i) - r) ** 2; norm += r * r; });
    const rel = Math.sqrt(diff / norm);
    assert.ok(norm > 0, `${name}: zero gradient in torch (the check would be empty)`);
    assert.ok(rel <= 1e-3, `${name}: gradient differs from torch autograd by ${rel.toExponential(2)} (relative)`);
    console.error(`# ${name}: gradient relative difference ${rel.toExponential(1)}`);
  }
}

test('RL policy-gradient loss with advantages and the KL term equals the DESIGN.md formula in torch, gradients too', async () => {
  const refSnapshot = join(dir, 'reference');
  makeCheckpoint(python, refSnapshot, 'untied-gqa7-nested', 12);
  const refFiles = await loadModelFiles(refSnapshot, { dtype: 'fp32', cacheDir: join(dir, 'cache'), log: () => {} });
  const traces = [await sftTrace(31, 'Red. \\boxed{red}<|im_end|>'), await sftTrace(32, 'I think it is blue: \\boxed{blue}<|im_end|>')];
  const advantages = [0.8, -1.3];
  const runner = await OnnxModel.load(files, { threads: 2 });
  const rollouts = await Promise.all(traces.map(async (t, i) => ({
    example: await featurize({ ids: t.chunk.ids, positions: t.chunk.positions, weights: t.weights, visuals: t.chunk.visuals }, runner),
    advantage: advantages[i]!,
  })));
  await runner.release();
  const sampledTokens = traces.reduce((a, t) => a + t.weights.slice(1).reduce((x, y) => x + y, 0), 0);
  const trained = await loadWeights(files.dir);
  const trainer = await Trainer.create(files.config, trained, { ...OPTIMIZER_DEFAULTS, lr: 0, totalSteps: 1 }, { threads: 2 });
  const refWeights = await loadWeights(refFiles.dir);
  const reference = new Map([...refWeights].filter(([n]) => trainer.params.has(n)).map(([n, w]) => [n, w.data]));
  const klCoef = 0.3;
  const { batch } = await policyGradientBatch(trainer, rollouts, files.config.text.hidden_size, sampledTokens, klCoef, reference);
  await trainer.release();
  const { graph, params } = buildTrainingGraph(files.config.text);
  const session = await openGraph(graph, { threads: 2 });
  const feeds: Record<string, ort.Tensor> = { ...batch.feeds };
  for (const name of params) feeds[name] = new ort.Tensor('float32', trained.get(name)!.data, trained.get(name)!.dims);
  const out = await session.run(feeds);
  const ours = (out.loss!.data as Float32Array)[0]!;
  const theirs = oracle<{ loss: number; grads: Record<string, { shape: number[]; data: number[] }> }>(python, {
    op: 'pg_loss', model: snapshot, reference: refSnapshot, sampled_tokens: sampledTokens, kl_coef: klCoef, params: CHECKED,
    rollouts: traces.map((t, i) => ({ ids: t.chunk.ids, sampled: t.weights, advantage: advantages[i], images: t.imagePaths })),
  });
  assert.ok(Math.abs(ours - theirs.loss) <= 1e-5 * Math.abs(theirs.loss), `loss ${ours} against torch's ${theirs.loss}`);
  assertSameGradients(out, trained, theirs.grads, CHECKED);
  console.error(`# RL loss ${ours} against ${theirs.loss}`);
  await session.release();
});
