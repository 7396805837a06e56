import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { OnnxModel } from '../engine/onnx-model.js';
import { ChatTokenizer } from '../model/chat-tokenizer.js';
import type { ModelFiles } from '../model/model-dir.js';
import { Rng } from '../util/random.js';
import { featurize, makeBatch, withoutFeatures, type TrainingExample } from './batch.js';
import { lineChartSvg } from './plot.js';
import { ProgressBar } from '../util/progress.js';
import { checkSuiteOptions, EASY_SUITES, suiteGenerator, SuiteOptionsSchema } from './tasks/index.js';
import type { SuiteName } from './tasks/types.js';
import { synthesizeTrace, tokenizeTrace } from './traces.js';
import { optimizerFields, runConfigFields, TrainingRun, type RunHooks } from './training-run.js';

/** Shares of trace kinds; `no_tools`: a direct answer to a regular task, prompted without tools. */
const MixSchema = z.object({
  direct: z.number().min(0), zoom: z.number().min(0), 'self-correction': z.number().min(0), no_tools: z.number().min(0).default(0),
  /** Grounding practice: the question's region as a box, without tools (image suites). */
  locate: z.number().min(0).default(0),
  /** Grounding in the zoom context: a zoom trace's first step (box said, crop called), nothing run (image suites). */
  look: z.number().min(0).default(0),
});
/** The kinds in the order their shares are laid out on [0, total). */
const MIX_KINDS = MixSchema.keyof().options;

export const SftConfigSchema = z.object({
  ...runConfigFields(50),
  data: z.object({
    suites: z.array(z.string()).min(1),
    suite_options: SuiteOptionsSchema,
    /** A fixed set of this many examples, cycled in epochs; without it every step draws fresh tasks. */
    examples: z.number().int().positive().optional(),
    seed: z.number().int().nonnegative().default(0),
    mix: MixSchema.default({ direct: 0.2, zoom: 0.6, 'self-correction': 0.2, no_tools: 0, locate: 0, look: 0 }),
  }).superRefine(checkSuiteOptions),
  hyperparameters: z.object({
    ...optimizerFields({ steps: 100, lr: 1e-3, minLrRatio: 0.1, warmupSteps: 10, weightDecay: 0.01 }),
    batch_size: z.number().int().positive().default(4),
  }).prefault({}),
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

export type SftHooks = RunHooks<StepLog>;

export interface SftResult {
  state: 'succeeded' | 'cancelled';
  steps: number;
  firstLoss: number;
  lastLoss: number;
  modelDir?: string;
}

type MixKind = (typeof MIX_KINDS)[number];

function kindFor(rng: Rng, mix: SftConfig['data']['mix']): MixKind {
  const total = MIX_KINDS.reduce((a, k) => a + mix[k], 0);
  let r = rng.next() * total;
  for (const k of MIX_KINDS) if ((r -= mix[k]) < 0) return k;
  return 'zoom';
}

/**
 * Example i of a data config: suite i mod suites, task seed data.seed + i, trace kind drawn from
 * the mix at position `kindAt` (i itself, or the batch's first position so that a batch holds one
 * kind: a batch pads to its longest example, and a 236-token locate trace padded to a 773-token
 * zoom trace wastes two thirds of its step). Without a runner the visual features are left for the
 * trainable vision tower to compute.
 */
async function synthesizeExample(data: SftConfig['data'], i: number, tokenizer: ChatTokenizer, files: ModelFiles, runner: OnnxModel | undefined, kindAt = i): Promise<TrainingExample> {
  const suite = data.suites[i % data.suites.length]! as SuiteName;
  const seed = data.seed + i;
  const drawn = kindFor(new Rng((data.seed + kindAt) * 31 + 5), data.mix);
  const task = drawn === 'direct' ? await EASY_SUITES[suite](seed) : await suiteGenerator(suite, data.suite_options[suite])(seed);
  const trace = drawn === 'no_tools' ? synthesizeTrace(task, 'direct', seed, { withTools: false }) : synthesizeTrace(task, drawn, seed);
  const tokens = await tokenizeTrace(trace, tokenizer, files.config);
  return runner ? featurize(tokens, runner) : withoutFeatures(tokens, files.config.text.hidden_size);
}

export async function buildSftExamples(data: SftConfig['data'] & { examples: number }, files: ModelFiles, runner: OnnxModel | undefined, log: (m: string) => void): Promise<TrainingExample[]> {
  const tokenizer = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const examples: TrainingExample[] = [];
  const bar = new ProgressBar(data.examples, 'data');
  for (let i = 0; i < data.examples; i++) {
    examples.push(await synthesizeExample(data, i, tokenizer, files, runner));
    bar.update(i + 1, { suite: data.suites[i % data.suites.length]! });
  }
  log(`prepared ${examples.length} examples (${examples.reduce((a, e) => a + e.ids.length, 0)} tokens)`);
  return examples;
}

/** The examples of one batch: from the fixed set, or synthesized fresh at their data positions. */
interface BatchSource {
  next(position: number, size: number): Promise<TrainingExample[]>;
  release(): Promise<void>;
}

async function batchSource(config: SftConfig, files: ModelFiles, log: (m: string) => void): Promise<BatchSource> {
  // A frozen vision tower encodes each example once, here; a trained one recomputes every step.
  const runner = config.train_vision ? undefined : await OnnxModel.load(files, { threads: config.threads });
  const { data } = config;
  if (data.examples !== undefined) {
    const examples = await buildSftExamples({ ...data, examples: data.examples }, files, runner, log).finally(() => runner?.release());
    return { next: async (position, size) => examplesAt(position, size, examples.length, data.seed).map((i) => examples[i]!), release: async () => {} };
  }
  // Streaming: fresh tasks every step (nothing repeats, memory stays flat), one trace kind per
  // batch. The next batch is synthesized while the current step runs.
  const tokenizer = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const make = (position: number, size: number) => Promise.all(Array.from({ length: size }, (_, k) => synthesizeExample(data, position + k, tokenizer, files, runner, position)));
  let ahead: { position: number; batch: Promise<TrainingExample[]> } | undefined;
  return {
    next: async (position, size) => {
      const batch = ahead?.position === position ? ahead.batch : make(position, size);
      ahead = { position: position + size, batch: make(position + size, size) };
      ahead.batch.catch(() => {}); // surfaced when awaited
      return batch;
    },
    release: async () => {
      await ahead?.batch.catch(() => {});
      await runner?.release();
    },
  };
}

function epochPermutation(total: number, seed: number, epoch: number): number[] {
  const rng = new Rng(seed * 1000003 + epoch);
  const perm = Array.from({ length: total }, (_, i) => i);
  for (let i = total - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  return perm;
}

/** Example order: a seeded permutation per epoch, so a data position alone says where a run stands. */
export function examplesAt(position: number, count: number, total: number, seed: number): number[] {
  const out: number[] = [];
  let perm: number[] = [];
  let permEpoch = -1;
  for (let p = position; p < position + count; p++) {
    const epoch = Math.floor(p / total);
    if (epoch !== permEpoch) [perm, permEpoch] = [epochPermutation(total, seed, epoch), epoch];
    out.push(perm[p % total]!);
  }
  return out;
}

async function writePlot(run: TrainingRun): Promise<void> {
  const lines = await run.readMetrics<StepLog>();
  await writeFile(join(run.out, 'loss.svg'), lineChartSvg('SFT training loss', [{ name: 'loss', color: '#2563eb', points: lines.map((l) => [l.step, l.loss]) }]));
}

/**
 * `pixelreasoner train sft`: warm start on synthesized traces. Resumes from `out/checkpoint` when
 * one exists (step count and data position continue). Writes metrics.jsonl, loss.svg and, when
 * the last step is done, a servable model directory `out/model`.
 */
export async function runSft(raw: unknown, hooks: SftHooks = {}): Promise<SftResult> {
  const config = SftConfigSchema.parse(raw);
  const log = hooks.log ?? ((m: string) => console.error(m));
  const run = await TrainingRun.open(config, 'sft', log);
  const { files, trainer } = run;
  const hp = config.hyperparameters;
  let step = run.startStep;
  let position = run.resumedMeta?.dataPosition ?? 0;
  const bar = new ProgressBar(hp.steps, 'sft');
  let tokensSeen = 0;
  let firstLoss = NaN;
  let lastLoss = NaN;
  let source: BatchSource | undefined;
  try {
    source = await batchSource(config, files, log);
    const started = performance.now();
    while (step < hp.steps) {
      const batch = makeBatch(await source.next(position, hp.batch_size), files.config.text.hidden_size);
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
      if (hooks.progress !== false) bar.update(step, { loss: r.loss, 'tok/s': entry.tokens_per_s }, run.startStep);
      if (await run.endStep(step, position, entry, hooks)) {
        await writePlot(run);
        return { state: 'cancelled', steps: step, firstLoss, lastLoss };
      }
    }
  } finally {
    await source?.release();
    await run.release();
  }
  await writePlot(run);
  return { state: 'succeeded', steps: step, firstLoss, lastLoss, modelDir: await run.exportModel(log) };
}
