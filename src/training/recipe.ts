import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { loadWeights } from '../model/load-weights.js';
import { initModelDir, loadModelFiles } from '../model/model-dir.js';
import type { PresetName } from '../model/presets.js';
import { writeSafetensors } from '../model/safetensors.js';
import { ABLATIONS_DIR, evalTable } from './bundle-eval.js';
import { EVAL_MAX_TOKENS } from './eval.js';
import { runRl } from './rl.js';
import { runSft } from './sft.js';
import { evalCommandLine, runEvalArgs } from './eval-command.js';
import { EVAL_SEED_BASE } from './tasks/index.js';

/**
 * The default model's recipe (`npm run train:default`): a seeded tiny model, SFT warm start on
 * synthesized traces, curiosity-driven RL from it, and the ablation the paper reports (RL without
 * the curiosity bonus). Each stage's config is a regular `train sft` / `train rl` config without
 * base_model and out, which the recipe fills in.
 */
export const RecipeSchema = z.object({
  preset: z.enum(['tiny', 'micro']).default('tiny'),
  seed: z.number().int().nonnegative().default(0),
  /**
   * Optional grounding phases before the warm start, each an SFT config run from the previous
   * model: `locate` traces only (short prompts, big batches), easy targets first, so the model
   * learns where things are before it learns to zoom. A model trained from scratch on mixed traces
   * learns the template and answers one constant box.
   */
  ground: z.array(z.record(z.string(), z.unknown())).default([]),
  /**
   * The warm start: one SFT config, or several run in turn (`sft`, `sft-2`, ...), each from the
   * previous model, so a later phase can add a suite's data without retraining the earlier ones.
   */
  sft: z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown())).min(1)]),
  rl: z.record(z.string(), z.unknown()),
  /** The bundle's evaluation (`EVAL.md`): `eval --ablations` on held-out seeds of these suites. */
  eval: z.object({
    suites: z.array(z.string()).min(1),
    n: z.number().int().positive(),
    seed: z.number().int().nonnegative().default(EVAL_SEED_BASE),
    max_tokens: z.number().int().positive().default(EVAL_MAX_TOKENS),
  }).optional(),
});
export type Recipe = z.infer<typeof RecipeSchema>;

export interface RecipeResult {
  /** The full recipe's model, with its ablations' weights and training report. */
  bundle: string;
}

/**
 * Runs every stage into `out` (a stage whose model already exists is skipped, and SFT/RL resume
 * from their checkpoints, so an interrupted run continues), then assembles the bundle: the full
 * recipe's model directory plus `ablations/warm-start.safetensors` and
 * `ablations/rl-no-curiosity.safetensors` (fp16), the recipe, and the curves of every stage.
 */
export async function runRecipe(raw: unknown, out: string, bundle: string, log: (m: string) => void = (m) => console.error(m)): Promise<RecipeResult> {
  const recipe = RecipeSchema.parse(raw);
  const base = join(out, 'base');
  const warmPhases = Array.isArray(recipe.sft) ? recipe.sft : [recipe.sft];
  const warmName = (i: number) => (i === 0 ? 'sft' : `sft-${i + 1}`);
  const stages = 3 + recipe.ground.length + warmPhases.length;
  if (!existsSync(join(base, 'config.json'))) {
    log(`[1/${stages}] random ${recipe.preset} model, seed ${recipe.seed} -> ${base}`);
    await initModelDir(base, { preset: recipe.preset as PresetName, seed: recipe.seed });
  }
  let n = 1;
  const stage = async (name: string, run: () => Promise<unknown>) => {
    const model = join(out, name, 'model');
    n++;
    if (existsSync(join(model, 'config.json'))) {
      log(`[${n}/${stages}] ${name}: done earlier (${model})`);
      return model;
    }
    log(`[${n}/${stages}] ${name} -> ${join(out, name)}`);
    await run();
    return model;
  };
  // Names shown in /v1/models: the bundle is `pixel-reasoner-tiny`, not the chain of stage suffixes
  // (`...-random-seed0-sft-sft-rl`) each run would append; a stage's own model_name still wins.
  const named = (suffix: string) => ({ model_name: `pixel-reasoner-${recipe.preset}${suffix}` });
  let grounded = base;
  for (const [i, phase] of recipe.ground.entries()) {
    const from = grounded;
    grounded = await stage(`ground-${i + 1}`, () => runSft({ ...named(`-ground-${i + 1}`), ...phase, base_model: from, out: join(out, `ground-${i + 1}`) }));
  }
  let sft = grounded;
  for (const [i, phase] of warmPhases.entries()) {
    const from = sft;
    sft = await stage(warmName(i), () => runSft({ ...named('-warm-start'), ...phase, base_model: from, out: join(out, warmName(i)) }));
  }
  const rl = await stage('rl', () => runRl({ ...named(''), ...recipe.rl, base_model: sft, out: join(out, 'rl') }));
  const rlPlain = await stage('rl-no-curiosity', () => runRl({
    ...named('-rl-no-curiosity'), ...recipe.rl, base_model: sft, out: join(out, 'rl-no-curiosity'),
    reward: { ...((recipe.rl.reward as object | undefined) ?? {}), curiosity: false },
  }));

  await rm(bundle, { recursive: true, force: true });
  await cp(rl, bundle, { recursive: true });
  await mkdir(join(bundle, ABLATIONS_DIR), { recursive: true });
  await writeSafetensors(join(bundle, ABLATIONS_DIR, 'warm-start.safetensors'), await loadWeights(sft), 'F16');
  await writeSafetensors(join(bundle, ABLATIONS_DIR, 'rl-no-curiosity.safetensors'), await loadWeights(rlPlain), 'F16');
  const report = join(bundle, 'training');
  await mkdir(report, { recursive: true });
  for (const [name, files] of [...recipe.ground.map((_, i) => [`ground-${i + 1}`, ['loss.svg', 'metrics.jsonl']] as const), ...warmPhases.map((_, i) => [warmName(i), ['loss.svg', 'metrics.jsonl']] as const), ['rl', ['rewards.svg', 'loss.svg', 'metrics.jsonl']], ['rl-no-curiosity', ['rewards.svg', 'metrics.jsonl']]] as const) {
    for (const f of files) if (existsSync(join(out, name, f))) await cp(join(out, name, f), join(report, `${name}-${f}`));
  }
  await writeFile(join(bundle, 'recipe.json'), `${JSON.stringify(raw, null, 2)}\n`);
  if (recipe.eval) await writeEvalReport(bundle, recipe.eval, log);
  log(`bundle written to ${bundle}`);
  return { bundle };
}

/** Scores the bundle as `pixelreasoner eval --ablations` does and writes the table, its command and the JSON rows to EVAL.md. */
async function writeEvalReport(bundle: string, spec: NonNullable<Recipe['eval']>, log: (m: string) => void): Promise<void> {
  const args = { ablations: true, suites: spec.suites, tools: true, n: spec.n, seed: spec.seed, maxTokens: spec.max_tokens, json: false };
  const command = evalCommandLine(args);
  log(`eval: ${command}`);
  const { tasks, rows, seconds } = await runEvalArgs(await loadModelFiles(bundle), args, (row) => log(`eval: ${row.name} done`));
  await writeFile(join(bundle, 'EVAL.md'), [
    '# Evaluation of this bundle', '',
    `Held-out seeds, \`${command}\` (${tasks.length} tasks x ${rows.length} rows in ${seconds.toFixed(1)} s; ± is the standard error over a suite's tasks; RaPR in percent):`, '',
    evalTable(rows), '', '`--json` rows of the same run:', '', '```json', JSON.stringify({ rows }), '```', '',
  ].join('\n'));
}

export async function readRecipe(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}
