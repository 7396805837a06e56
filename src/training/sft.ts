import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ModelRunner } from '../engine/model-runner.js';
import { ChatTokenizer } from '../model/chat-tokenizer.js';
import { resolveDefaultModel } from '../model/default-model.js';
import { loadWeights } from '../model/load-weights.js';
import { loadModelFiles, writeModelDir, type ModelFiles } from '../model/model-dir.js';
import type { Weights } from '../model/weights.js';
import { Rng } from '../util/random.js';
import { featurize, makeBatch, type TrainingExample } from './batch.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { OPTIMIZER_DEFAULTS, type OptimizerOptions } from './optimizer.js';
import { lineChartSvg } from './plot.js';
import { ProgressBar } from './progress.js';
import { EASY_SUITES, suiteGenerator } from './tasks/index.js';
import type { SuiteName } from './tasks/types.js';
import { synthesizeTrace, tokenizeTrace, type TraceKind } from './traces.js';
import { Trainer } from './trainer.js';

export const SftConfigSchema = z.object({
  /** Model directory to start from (default: the bundled default model). */
  base_model: z.string().optional(),
  /** Run folder: config, metrics.jsonl, loss.svg, checkpoint/, model/. */
  out: z.string(),
  data: z.object({
    suites: z.array(z.string()).min(1),
    examples: z.number().int().positive(),
    seed: z.number().int().nonnegative().default(0),
    /** Shares of trace kinds; `no_tools`: a direct answer to a regular task, prompted without tools. */
    mix: z.object({ direct: z.number().min(0), zoom: z.number().min(0), 'self-correction': z.number().min(0), no_tools: z.number().min(0).default(0) })
      .default({ direct: 0.2, zoom: 0.6, 'self-correction': 0.2, no_tools: 0 }),
  }),
  hyperparameters: z.object({
    steps: z.number().int().positive().default(100),
    batch_size: z.number().int().positive().default(4),
    lr: z.number().positive().default(1e-3),
    min_lr_ratio: z.number().min(0).max(1).default(0.1),
    warmup_steps: z.number().int().nonnegative().default(10),
    weight_decay: z.number().min(0).default(0.01),
    clip: z.number().min(0).default(1),
  }).prefault({}),
  checkpoint_every: z.number().int().positive().default(50),
  threads: z.number().int().positive().optional(),
  /** Train the vision tower too (default); false keeps it frozen (faster, features computed once). */
  train_vision: z.boolean().default(true),
  /** Name of the exported model (config.json `_name_or_path`, shown in /v1/models once served). */
  model_name: z.string().optional(),
});
export type SftConfig = z.infer<typeof SftConfigSchema>;

export interface StepLog {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  trained_tokens: number;
  tokens_per_s: number;
  elapsed_s: number;
}

export interface SftHooks {
  onStep?: (log: StepLog) => void;
  /** Checked after every step: when aborted, the run checkpoints and stops (state 'cancelled'). */
  signal?: AbortSignal;
  log?: (message: string) => void;
  progress?: boolean;
}

export interface SftResult {
  state: 'succeeded' | 'cancelled';
  steps: number;
  firstLoss: number;
  lastLoss: number;
  modelDir?: string;
}

type MixKind = TraceKind | 'no_tools';

function kindFor(rng: Rng, mix: SftConfig['data']['mix']): MixKind {
  const kinds: MixKind[] = ['direct', 'zoom', 'self-correction', 'no_tools'];
  const total = kinds.reduce((a, k) => a + mix[k], 0);
  let r = rng.next() * total;
  for (const k of kinds) if ((r -= mix[k]) < 0) return k;
  return 'zoom';
}

/** Synthesizes, tokenizes and featurizes the SFT examples (deterministic per data seed). */
export async function buildSftExamples(data: SftConfig['data'], files: ModelFiles, runner: ModelRunner, log: (m: string) => void): Promise<TrainingExample[]> {
  const tokenizer = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const examples: TrainingExample[] = [];
  const bar = new ProgressBar(data.examples, 'data');
  for (let i = 0; i < data.examples; i++) {
    const suite = data.suites[i % data.suites.length]! as SuiteName;
    const seed = data.seed + i;
    const kind = kindFor(new Rng(seed * 31 + 5), data.mix);
    const task = kind === 'direct' ? await EASY_SUITES[suite](seed) : await suiteGenerator(suite)(seed);
    const trace = kind === 'no_tools' ? synthesizeTrace(task, 'direct', seed, { withTools: false }) : synthesizeTrace(task, kind, seed);
    examples.push(await featurize(await tokenizeTrace(trace, tokenizer, files.config), runner));
    bar.update(i + 1, { suite });
  }
  log(`prepared ${examples.length} examples (${examples.reduce((a, e) => a + e.ids.length, 0)} tokens)`);
  return examples;
}

/** Example order: a seeded permutation per epoch, so a data position alone says where a run stands. */
export function examplesAt(position: number, count: number, total: number, seed: number): number[] {
  const out: number[] = [];
  for (let p = position; p < position + count; p++) {
    const epoch = Math.floor(p / total);
    const rng = new Rng(seed * 1000003 + epoch);
    const perm = Array.from({ length: total }, (_, i) => i);
    for (let i = total - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    out.push(perm[p % total]!);
  }
  return out;
}

async function writePlot(out: string): Promise<void> {
  const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as StepLog);
  await writeFile(join(out, 'loss.svg'), lineChartSvg('SFT training loss', [{ name: 'loss', color: '#2563eb', points: lines.map((l) => [l.step, l.loss]) }]));
}

/**
 * `pixelreasoner train sft`: warm start on synthesized traces. Resumes from `out/checkpoint` when
 * one exists (step count and data position continue). Writes metrics.jsonl, loss.svg and, when
 * the last step is done, a servable model directory `out/model`.
 */
export async function runSft(raw: unknown, hooks: SftHooks = {}): Promise<SftResult> {
  const config = SftConfigSchema.parse(raw);
  const log = hooks.log ?? ((m: string) => console.error(m));
  const out = resolve(config.out);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const files = await loadModelFiles(config.base_model ?? (await resolveDefaultModel(log)));
  let weights: Weights = await loadWeights(files.dir);
  const ckptDir = join(out, 'checkpoint');
  const resumed = existsSync(join(ckptDir, 'checkpoint.json')) ? await loadCheckpoint(ckptDir) : undefined;
  if (resumed) {
    weights = resumed.weights;
    log(`resuming from step ${resumed.meta.step}`);
  }
  const runner = await ModelRunner.load(files, { threads: config.threads });
  const examples = await buildSftExamples(config.data, files, runner, log);
  await runner.release();
  const hp = config.hyperparameters;
  const options: OptimizerOptions = {
    ...OPTIMIZER_DEFAULTS, lr: hp.lr, minLrRatio: hp.min_lr_ratio, warmupSteps: hp.warmup_steps, totalSteps: hp.steps, weightDecay: hp.weight_decay, clip: hp.clip,
  };
  const trainer = await Trainer.create(files.config, weights, options, { threads: config.threads, trainVision: config.train_vision });
  if (resumed) trainer.state = resumed.adam;
  let step = resumed?.meta.step ?? 0;
  let position = resumed?.meta.dataPosition ?? 0;
  const startStep = step;
  const bar = new ProgressBar(hp.steps, 'sft');
  const started = performance.now();
  let tokensSeen = 0;
  let firstLoss = NaN;
  let lastLoss = NaN;
  const checkpoint = () => saveCheckpoint(ckptDir, weights, trainer.state, { step, dataPosition: position, base_model: files.dir });
  try {
    while (step < hp.steps) {
      const batch = makeBatch(examplesAt(position, hp.batch_size, examples.length, config.data.seed).map((i) => examples[i]!), files.config.text.hidden_size);
      const r = await trainer.step(batch);
      step++;
      position += hp.batch_size;
      tokensSeen += batch.tokens;
      const elapsed = (performance.now() - started) / 1000;
      const entry: StepLog = {
        step, loss: r.loss, lr: r.lr, grad_norm: r.gradNorm, tokens: batch.tokens, trained_tokens: batch.trainedTokens,
        tokens_per_s: tokensSeen / elapsed, elapsed_s: elapsed,
      };
      if (Number.isNaN(firstLoss)) firstLoss = r.loss;
      lastLoss = r.loss;
      await appendFile(join(out, 'metrics.jsonl'), JSON.stringify(entry) + '\n');
      hooks.onStep?.(entry);
      if (hooks.progress !== false) bar.update(step, { loss: r.loss, 'tok/s': entry.tokens_per_s }, startStep);
      if (step % config.checkpoint_every === 0 || step === hp.steps || hooks.signal?.aborted) await checkpoint();
      if (hooks.signal?.aborted) {
        await writePlot(out);
        return { state: 'cancelled', steps: step, firstLoss, lastLoss };
      }
    }
  } finally {
    await trainer.release();
  }
  await writePlot(out);
  const modelDir = join(out, 'model');
  await writeModelDir(modelDir, files.config, weights, files, config.model_name ?? `${files.name}-sft`);
  log(`model written to ${modelDir}`);
  return { state: 'succeeded', steps: step, firstLoss, lastLoss, modelDir };
}
