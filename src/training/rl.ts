import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { openEngine } from '../engine/open-engine.js';
import type { GenerationResult } from '../engine/types.js';
import { loadWeights } from '../model/load-weights.js';
import { featurize, withoutFeatures, type TrainingExample } from './batch.js';
import { policyGradientBatch } from './policy-gradient.js';
import { scoreTask, taskRequest } from './eval.js';
import { mean } from './metrics.js';
import { lineChartSvg } from './plot.js';
import { ProgressBar } from '../util/progress.js';
import { grpoAdvantages, groupRewards, rapr, REFERENCE_REWARD, type RewardConfig, type Rollout } from './rewards.js';
import { checkSuiteOptions, suiteGenerator, SuiteOptionsSchema } from './tasks/index.js';
import type { Task } from './tasks/types.js';
import { optimizerFields, runConfigFields, TrainingRun, type RunHooks } from './training-run.js';

export const RlConfigSchema = z.object({
  ...runConfigFields(10),
  data: z.object({ suites: z.array(z.string()).min(1), suite_options: SuiteOptionsSchema, seed: z.number().int().nonnegative().default(0) }).superRefine(checkSuiteOptions),
  rollouts: z.object({
    group_size: z.number().int().min(2).default(8),
    prompts_per_step: z.number().int().positive().default(4),
    temperature: z.number().positive().default(1),
    max_tokens: z.number().int().positive().default(256),
    max_tool_calls: z.number().int().nonnegative().default(3),
  }).prefault({}),
  reward: z.object({
    H: z.number().min(0).max(1).default(REFERENCE_REWARD.H),
    alpha: z.number().min(0).default(REFERENCE_REWARD.alpha),
    beta: z.number().min(0).default(REFERENCE_REWARD.beta),
    N: z.number().int().nonnegative().default(REFERENCE_REWARD.N),
    /** false: RL without the curiosity bonus (the ablation). */
    curiosity: z.boolean().default(true),
  }).prefault({}),
  hyperparameters: z.object({
    ...optimizerFields({ steps: 20, lr: 5e-4, minLrRatio: 1, warmupSteps: 0, weightDecay: 0 }),
    /**
     * KL penalty to the starting policy (0 = off): each sampled token's weight gets
     * -kl_coef·(log π − log π_ref), the score-function gradient of KL(π‖π_ref).
     */
    kl_coef: z.number().min(0).default(0),
    /** Rollouts per forward/backward pass (gradients are summed over the step's micro-batches). */
    micro_batch: z.number().int().positive().default(8),
  }).prefault({}),
});
export type RlConfig = z.infer<typeof RlConfigSchema>;

export interface RlStepLog {
  step: number;
  reward: number;
  reward_correctness: number;
  reward_curiosity: number;
  reward_penalty: number;
  accuracy: number;
  rapr: number;
  tool_calls_per_rollout: number;
  tool_errors_per_rollout: number;
  groups_kept: number;
  groups: number;
  loss: number;
  /** Mean log π − log π_ref over the step's sampled tokens (0 when the KL term is off). */
  kl: number;
  lr: number;
  grad_norm: number;
  rollout_tokens_per_s: number;
  train_tokens_per_s: number;
  elapsed_s: number;
}

export type RlHooks = RunHooks<RlStepLog>;

export interface RlResult {
  state: 'succeeded' | 'cancelled';
  steps: number;
  first?: RlStepLog;
  last?: RlStepLog;
  modelDir?: string;
}

/** One rollout as the reward sees it (DESIGN.md §5), from the engine's result. */
export function rolloutOf(task: Task, r: GenerationResult): Rollout & { score: number } {
  const score = scoreTask(task, r.text);
  const last = r.steps.at(-1);
  return { correct: score >= 0.5, score, visualOps: r.steps.length, lastOpFailed: last !== undefined && !last.ok };
}

/** Step tasks: prompts_per_step fresh seeds per step, suites in turn (deterministic per step). */
export async function tasksForStep(config: RlConfig, step: number): Promise<Task[]> {
  const p = config.rollouts.prompts_per_step;
  return Promise.all(Array.from({ length: p }, (_, j) => {
    const k = step * p + j;
    const suite = config.data.suites[k % config.data.suites.length]!;
    return suiteGenerator(suite, config.data.suite_options[suite])(config.data.seed + k);
  }));
}

async function writePlots(run: TrainingRun): Promise<void> {
  const out = run.out;
  const lines = await run.readMetrics<RlStepLog>();
  const series = (name: string, color: string, f: (l: RlStepLog) => number) => ({ name, color, points: lines.map((l) => [l.step, f(l)] as [number, number]) });
  await writeFile(join(out, 'rewards.svg'), lineChartSvg('RL reward parts, accuracy and RaPR', [
    series('reward', '#111827', (l) => l.reward), series('correctness', '#2563eb', (l) => l.reward_correctness),
    series('curiosity', '#16a34a', (l) => l.reward_curiosity), series('penalty', '#dc2626', (l) => l.reward_penalty),
    series('accuracy', '#9333ea', (l) => l.accuracy), series('RaPR', '#ea580c', (l) => l.rapr),
  ]));
  await writeFile(join(out, 'loss.svg'), lineChartSvg('RL policy-gradient loss', [series('loss', '#2563eb', (l) => l.loss)]));
}

/**
 * `pixelreasoner train rl`: curiosity-driven GRPO. Each step: write the current policy as a model
 * directory, sample G rollouts per prompt through the engine (real tool loop), reward them
 * (correctness + α·curiosity + β·penalty, DESIGN.md §5), normalise advantages per group (groups
 * with no variance are dropped), and take one policy-gradient step: the training graph with
 * per-token weights advantage / (sampled tokens of the step) on the tokens the model sampled.
 */
export async function runRl(raw: unknown, hooks: RlHooks = {}): Promise<RlResult> {
  const config = RlConfigSchema.parse(raw);
  const log = hooks.log ?? ((m: string) => console.error(m));
  const run = await TrainingRun.open(config, 'rl', log);
  const { files, weights, trainer } = run;
  const hp = config.hyperparameters;
  // The starting policy, for the KL term: the base model's weights (also after a resume).
  const reference = hp.kl_coef > 0 ? new Map([...(await loadWeights(files.dir))].filter(([n]) => trainer.params.has(n)).map(([n, w]) => [n, w.data])) : undefined;
  const rewardConfig: RewardConfig = { ...REFERENCE_REWARD, H: config.reward.H, alpha: config.reward.curiosity ? config.reward.alpha : 0, beta: config.reward.beta, N: config.reward.N };
  let step = run.startStep;
  const bar = new ProgressBar(hp.steps, 'rl');
  const started = performance.now();
  let first: RlStepLog | undefined;
  let last: RlStepLog | undefined;
  try {
    while (step < hp.steps) {
      // Rollouts with the current policy.
      const { group_size: G, temperature, max_tokens: maxTokens, max_tool_calls: maxToolCalls } = config.rollouts;
      const tasks = await tasksForStep(config, step);
      const rolloutStart = performance.now();
      let groups: { task: Task; results: GenerationResult[] }[];
      const examples: { example: TrainingExample; advantage: number }[] = [];
      const rollouts: (Rollout & { score: number })[] = [];
      const parts = { correctness: [] as number[], curiosity: [] as number[], penalty: [] as number[], total: [] as number[] };
      let groupsKept = 0;
      let sampledTokens = 0;
      const engine = await openEngine(files, { weights, threads: config.threads, maxNumSeqs: Math.min(64, G * tasks.length) });
      try {
        groups = await Promise.all(tasks.map(async (task, j) => ({
          task,
          results: await engine.generateMany(taskRequest(task, {
            tools: true, maxTokens, maxToolCalls,
            sampling: { temperature, topP: 1, topK: 0, presencePenalty: 0, frequencyPenalty: 0, seed: (config.data.seed + step) * 100_003 + j * G },
          }), G, () => ({ recordTrajectory: true })),
        })));
        for (const { task, results } of groups) {
          const group = results.map((r) => rolloutOf(task, r));
          rollouts.push(...group);
          const rewards = groupRewards(group, task.frames !== undefined, rewardConfig);
          for (const p of rewards) {
            parts.correctness.push(p.correctness);
            parts.curiosity.push(p.curiosity);
            parts.penalty.push(p.penalty);
            parts.total.push(p.total);
          }
          const advantages = grpoAdvantages(rewards.map((p) => p.total));
          if (!advantages) continue;
          groupsKept++;
          for (const [i, r] of results.entries()) {
            const t = r.trajectory!;
            sampledTokens += t.sampled.reduce((a, b) => a + b, 0);
            const trace = { ids: t.ids, positions: t.positions, weights: t.sampled, visuals: t.visuals };
            const example = config.train_vision ? withoutFeatures(trace, files.config.text.hidden_size) : await featurize(trace, engine.model);
            examples.push({ example, advantage: advantages[i]! });
          }
        }
      } finally {
        await engine.release();
      }
      const rolloutSeconds = (performance.now() - rolloutStart) / 1000;
      const rolloutTokens = groups.flatMap((g) => g.results).reduce((a, r) => a + r.usage.completion_tokens, 0);
      // Policy-gradient step on the kept groups.
      const trainStart = performance.now();
      let klSum = 0;
      let klCount = 0;
      let loss = 0;
      let gradNorm = 0;
      let lr = 0;
      let trainTokens = 0;
      if (examples.length > 0) {
        const batches = [];
        for (let i = 0; i < examples.length; i += hp.micro_batch) {
          const chunk = examples.slice(i, i + hp.micro_batch);
          const pg = await policyGradientBatch(trainer, chunk, files.config.text.hidden_size, sampledTokens, hp.kl_coef, reference);
          const batch = pg.batch;
          klSum += pg.klSum;
          klCount += pg.klCount;
          trainTokens += batch.tokens;
          batches.push(batch);
        }
        ({ loss, gradNorm, lr } = await trainer.step(batches));
      }
      const trainSeconds = (performance.now() - trainStart) / 1000;
      step++;
      const entry: RlStepLog = {
        step,
        reward: mean(parts.total), reward_correctness: mean(parts.correctness), reward_curiosity: mean(parts.curiosity), reward_penalty: mean(parts.penalty),
        accuracy: mean(rollouts.map((r) => r.score)), rapr: rapr(rollouts),
        tool_calls_per_rollout: mean(groups.flatMap((g) => g.results.map((r) => r.steps.length))),
        tool_errors_per_rollout: mean(groups.flatMap((g) => g.results.map((r) => r.steps.filter((s) => !s.ok).length))),
        groups_kept: groupsKept, groups: groups.length, loss, lr, grad_norm: gradNorm,
        kl: klCount > 0 ? klSum / klCount : 0,
        rollout_tokens_per_s: rolloutTokens / rolloutSeconds, train_tokens_per_s: trainSeconds > 0 ? trainTokens / trainSeconds : 0,
        elapsed_s: (performance.now() - started) / 1000,
      };
      first ??= entry;
      last = entry;
      if (hooks.progress !== false) bar.update(step, { reward: entry.reward, acc: entry.accuracy, rapr: entry.rapr }, run.startStep);
      if (await run.endStep(step, step * config.rollouts.prompts_per_step, entry, hooks)) {
        await writePlots(run);
        return { state: 'cancelled', steps: step, first, last };
      }
    }
  } finally {
    await run.release();
  }
  await writePlots(run);
  return { state: 'succeeded', steps: step, first, last, modelDir: await run.exportModel(log) };
}
