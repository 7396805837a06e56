import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { resolveDefaultModel } from '../model/default-model.js';
import { loadWeights } from '../model/load-weights.js';
import { untieHeadCopy } from '../model/weights.js';
import { loadModelFiles, writeModelDir, type ModelFiles } from '../model/model-dir.js';
import type { Weights } from '../model/weights.js';
import { loadCheckpoint, recoverCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { OPTIMIZER_DEFAULTS, type OptimizerOptions } from './optimizer.js';
import { Trainer } from './trainer.js';
import { syncDir, writeSynced } from '../util/files.js';

/** Config fields every training stage shares (SFT and RL add their data and stage options). */
export function runConfigFields(checkpointEvery: number) {
  return {
    /** Model directory to start from (default: the bundled default model). */
    base_model: z.string().optional(),
    /** Run folder: config.json, metrics.jsonl, plots, checkpoint/, model/. */
    out: z.string(),
    checkpoint_every: z.number().int().positive().default(checkpointEvery),
    threads: z.number().int().positive().optional(),
    /** Train the vision tower too (default); false keeps it frozen (faster, features computed once). */
    train_vision: z.boolean().default(true),
    /** Name of the exported model (config.json `_name_or_path`, shown in /v1/models once served). */
    model_name: z.string().optional(),
  };
}

/** The optimizer hyperparameters, with a stage's own defaults. */
export function optimizerFields(d: { steps: number; lr: number; minLrRatio: number; warmupSteps: number; weightDecay: number }) {
  return {
    steps: z.number().int().positive().default(d.steps),
    lr: z.number().positive().default(d.lr),
    min_lr_ratio: z.number().min(0).max(1).default(d.minLrRatio),
    warmup_steps: z.number().int().nonnegative().default(d.warmupSteps),
    weight_decay: z.number().min(0).default(d.weightDecay),
    clip: z.number().min(0).default(1),
  };
}

type OptimizerFields = z.infer<z.ZodObject<ReturnType<typeof optimizerFields>>>;
type RunFields = z.infer<z.ZodObject<ReturnType<typeof runConfigFields>>> & { hyperparameters: OptimizerFields };

/** Callbacks of a training run (the CLI prints progress; the jobs worker reports steps over IPC). */
export interface RunHooks<Log> {
  onStep?: (log: Log) => void;
  /** Checked after every step: when aborted, the run checkpoints and stops (state 'cancelled'). */
  signal?: AbortSignal;
  log?: (message: string) => void;
  progress?: boolean;
}

/**
 * Before a run continues after `step` (0: from the start): keeps one line of metrics.jsonl per
 * step up to `step`, in step order, and drops the rest. A run killed after its last checkpoint
 * logged steps it will now log again; a line cut off by the kill does not parse and goes too; of
 * a step logged twice (by a resume before this existed) the last line stays. The file is
 * replaced atomically: a temp file, fsynced, renamed over it, the folder fsynced.
 */
export async function truncateMetrics(path: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const lines = text.split('\n').filter(Boolean);
  const byStep = new Map<number, string>();
  for (const line of lines) {
    let s: unknown;
    try {
      s = (JSON.parse(line) as { step?: unknown }).step;
    } catch {
      continue;
    }
    if (typeof s === 'number' && s <= step) byStep.set(s, line);
  }
  const kept = [...byStep.entries()].sort(([a], [b]) => a - b).map(([, line]) => `${line}\n`).join('');
  if (kept === text) return;
  const tmp = `${path}.tmp-${process.pid}`;
  await writeSynced(tmp, kept);
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/**
 * A run folder opened for training: the base model, its weights (or the checkpoint's, when the
 * folder has one: step count and data position continue), and a trainer over them.
 */
export class TrainingRun {
  private constructor(
    readonly out: string,
    readonly files: ModelFiles,
    readonly weights: Weights,
    readonly trainer: Trainer,
    readonly resumedMeta: CheckpointMeta | undefined,
    private readonly modelName: string,
    private readonly checkpointEvery: number,
    private readonly totalSteps: number,
  ) {}

  static async open(config: RunFields, stage: 'sft' | 'rl', log: (m: string) => void): Promise<TrainingRun> {
    const out = resolve(config.out);
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    // A snapshot as base model is converted at fp32: training updates fp32 master weights.
    const files = await loadModelFiles(config.base_model ?? (await resolveDefaultModel(log)), { dtype: 'fp32', log });
    const ckptDir = join(out, 'checkpoint');
    const resumed = (await recoverCheckpoint(ckptDir, log)) ? await loadCheckpoint(ckptDir) : undefined;
    if (resumed) log(`resuming from step ${resumed.meta.step}`);
    // Steps logged after the checkpoint (the run was killed before its next save) are run again.
    await truncateMetrics(join(out, 'metrics.jsonl'), resumed?.meta.step ?? 0);
    const weights = untieHeadCopy(files.config.text, resumed?.weights ?? (await loadWeights(files.dir)));
    const hp = config.hyperparameters;
    const options: OptimizerOptions = {
      ...OPTIMIZER_DEFAULTS, lr: hp.lr, minLrRatio: hp.min_lr_ratio, warmupSteps: hp.warmup_steps, totalSteps: hp.steps, weightDecay: hp.weight_decay, clip: hp.clip,
    };
    const trainer = await Trainer.create(files.config, weights, options, { threads: config.threads, trainVision: config.train_vision });
    if (resumed) trainer.state = resumed.adam;
    return new TrainingRun(out, files, weights, trainer, resumed?.meta, config.model_name ?? `${files.name}-${stage}`, config.checkpoint_every, hp.steps);
  }

  get startStep(): number {
    return this.resumedMeta?.step ?? 0;
  }

  checkpoint(step: number, dataPosition: number): Promise<void> {
    return saveCheckpoint(join(this.out, 'checkpoint'), this.weights, this.trainer.state, { step, dataPosition, base_model: this.files.dir });
  }

  /**
   * After a step: logs its metrics, reports them, and checkpoints when due (every
   * checkpoint_every steps, at the last step, and on cancel). Returns true when the run is cancelled.
   */
  async endStep<Log extends object>(step: number, dataPosition: number, entry: Log, hooks: RunHooks<Log>): Promise<boolean> {
    await appendFile(join(this.out, 'metrics.jsonl'), JSON.stringify(entry) + '\n');
    hooks.onStep?.(entry);
    const cancelled = hooks.signal?.aborted === true;
    if (step % this.checkpointEvery === 0 || step === this.totalSteps || cancelled) await this.checkpoint(step, dataPosition);
    return cancelled;
  }

  async readMetrics<Log>(): Promise<Log[]> {
    return (await readFile(join(this.out, 'metrics.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Log);
  }

  /** Writes the trained weights as a servable model directory `out/model`. */
  async exportModel(log: (m: string) => void): Promise<string> {
    const dir = join(this.out, 'model');
    await writeModelDir(dir, this.files.config, this.weights, this.files, this.modelName);
    log(`model written to ${dir}`);
    return dir;
  }

  release(): Promise<void> {
    return this.trainer.release();
  }
}
