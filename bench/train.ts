/**
 * Training benchmark: tokens/s and achieved GFLOP/s of the SFT training step (forward, loss,
 * backward on ONNX Runtime, AdamW in JS) on the tiny preset, next to the MatMul peak of the same
 * machine measured in the same run (one [n,n]x[n,n] float32 MatMul graph, same thread count).
 * FLOPs are counted analytically: 2 per multiply-add of every MatMul in the forward pass
 * (projections, MLP, LM head, and attention over the padded batch), times 3 for forward+backward.
 *
 * Vision FLOPs are not counted (the vision tower trains too unless --frozen-vision; its time is in tokens/s).
 *
 *   npm run bench:train -- [--json] [--steps 10] [--batch 4] [--examples 16] [--model DIR] [--threads N] [--frozen-vision]
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { OnnxModel } from '../src/engine/onnx-model.js';
import type { TextConfig } from '../src/model/config.js';
import { resolveDefaultModel } from '../src/model/default-model.js';
import { loadWeights } from '../src/model/load-weights.js';
import { loadModelFiles } from '../src/model/model-dir.js';
import { Graph } from '../src/model/onnx/ir.js';
import { makeBatch, type Batch } from '../src/training/batch.js';
import { OPTIMIZER_DEFAULTS } from '../src/training/optimizer.js';
import { openGraph } from '../src/training/session.js';
import { buildSftExamples, examplesAt } from '../src/training/sft.js';
import { Trainer } from '../src/training/trainer.js';

const { values } = parseArgs({
  options: { json: { type: 'boolean' }, steps: { type: 'string' }, batch: { type: 'string' }, examples: { type: 'string' }, model: { type: 'string' }, threads: { type: 'string' }, 'frozen-vision': { type: 'boolean' } },
});
const STEPS = Number(values.steps ?? 10);
const BATCH = Number(values.batch ?? 4);
const EXAMPLES = Number(values.examples ?? 16);
const THREADS = values.threads ? Number(values.threads) : availableParallelism();
const TRAIN_VISION = values['frozen-vision'] !== true;
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Forward FLOPs of one padded batch [b, s] through the text decoder and LM head. */
function forwardFlops(c: TextConfig, b: number, s: number): number {
  const { hidden_size: h, num_attention_heads: nh, num_key_value_heads: nkv, head_dim: d, intermediate_size: f, vocab_size: v } = c;
  const perToken = 2 * (h * nh * d + 2 * h * nkv * d + nh * d * h + 3 * h * f) * c.num_hidden_layers + 2 * h * v;
  const attention = 2 * 2 * b * s * s * nh * d * c.num_hidden_layers; // scores and weighted values
  return perToken * b * s + attention;
}

async function matmulPeak(n: number): Promise<number> {
  const g = new Graph('matmul_peak');
  const a = g.input('a', 'float32', [n, n]);
  const bIn = g.input('b', 'float32', [n, n]);
  g.output(g.op('MatMul', [a, bIn]), 'c', 'float32', [n, n]);
  const session = await openGraph(g, { threads: THREADS });
  const data = Float32Array.from({ length: n * n }, (_, i) => ((i * 2654435761) % 1000) / 1000);
  const feeds = { a: new ort.Tensor('float32', data, [n, n]), b: new ort.Tensor('float32', data, [n, n]) };
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const reps = 10;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await session.run(feeds);
  const seconds = (performance.now() - t0) / 1000;
  await session.release();
  return (2 * n ** 3 * reps) / seconds / 1e9;
}

const files = await loadModelFiles(values.model ?? (await resolveDefaultModel(log)));
const c = files.config.text;
const runner = TRAIN_VISION ? undefined : await OnnxModel.load(files, { threads: THREADS });
const examples = await buildSftExamples({ suites: ['vstar-syn', 'tally-syn'], suite_options: {}, examples: EXAMPLES, seed: 0, mix: { direct: 0.2, zoom: 0.6, 'self-correction': 0.2, no_tools: 0, locate: 0, look: 0 } }, files, runner, log);
await runner?.release();
const trainer = await Trainer.create(files.config, await loadWeights(files.dir), { ...OPTIMIZER_DEFAULTS, totalSteps: STEPS + 2, warmupSteps: 1 }, { threads: THREADS, trainVision: TRAIN_VISION });
const batches: Batch[] = Array.from({ length: STEPS + 2 }, (_, i) => makeBatch(examplesAt(i * BATCH, BATCH, examples.length, 0).map((k) => examples[k]!), c.hidden_size));
for (const batch of batches.slice(0, 2)) await trainer.step(batch); // warm-up (allocation, kernel selection)
let tokens = 0;
let padded = 0;
let flops = 0;
const t0 = performance.now();
for (const batch of batches.slice(2)) {
  await trainer.step(batch);
  const [b, s] = batch.feeds.input_ids!.dims as [number, number];
  tokens += batch.tokens;
  padded += b * s;
  flops += 3 * forwardFlops(c, b, s);
}
const seconds = (performance.now() - t0) / 1000;
await trainer.release();
const peak = await matmulPeak(1024);
const result = {
  tokens_per_s: tokens / seconds,
  gflops: flops / seconds / 1e9,
  matmul_peak_gflops: peak,
  fraction_of_peak: flops / seconds / 1e9 / peak,
  train_vision: TRAIN_VISION, steps: STEPS, batch_size: BATCH, tokens, padded_tokens: padded, seconds, threads: THREADS, model: files.name,
};
log(`training: ${result.tokens_per_s.toFixed(0)} tokens/s (${tokens} tokens in ${seconds.toFixed(2)} s, ${STEPS} steps of ${BATCH}, ${(padded / STEPS / BATCH).toFixed(0)} padded tokens per row)`);
log(`achieved ${result.gflops.toFixed(2)} GFLOP/s vs MatMul peak ${peak.toFixed(2)} GFLOP/s (${(100 * result.fraction_of_peak).toFixed(1)}%) on ${THREADS} threads`);
console.log(JSON.stringify(result));
