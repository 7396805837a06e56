import { INFOVQA_DEFAULTS, INFOVQA_RANGES, infovqaTask } from './infovqa-syn.js';
import { MVBENCH_DEFAULTS, MVBENCH_RANGES, mvbenchTask } from './mvbench-syn.js';
import { TALLY_DEFAULTS, TALLY_RANGES, tallyTask } from './tally-syn.js';
import type { SuiteName, Task } from './types.js';
import { z } from 'zod';
import { Rng } from '../../util/random.js';
import { VSTAR_DEFAULTS, VSTAR_RANGES, vstarTask } from './vstar-syn.js';

export type { SuiteName, Task } from './types.js';

/** The four synthetic suites, one per benchmark of the paper. */
export const SUITES: Record<SuiteName, (seed: number) => Promise<Task>> = {
  'vstar-syn': vstarTask,
  'tally-syn': tallyTask,
  'mvbench-syn': mvbenchTask,
  'infovqa-syn': infovqaTask,
};

/**
 * Easy variants whose answer is readable at the model's input resolution: the questions of the
 * text-only ("direct") SFT traces, so the model also learns when a zoom is not needed.
 */
export const EASY_SUITES: Record<SuiteName, (seed: number) => Promise<Task>> = {
  'vstar-syn': (seed) => vstarTask(seed, { ...VSTAR_DEFAULTS, targetSize: 96, decoys: 0 }),
  'tally-syn': (seed) => tallyTask(seed, { ...TALLY_DEFAULTS, objectSize: 24, gap: 12 }),
  'mvbench-syn': (seed) => mvbenchTask(seed, { ...MVBENCH_DEFAULTS, targetSize: 128, decoys: 0 }),
  'infovqa-syn': (seed) => infovqaTask(seed, { ...INFOVQA_DEFAULTS, fontSize: 28, rows: 3 }),
};

/** Held-out evaluation seeds start here; training draws below it. */
export const EVAL_SEED_BASE = 1_000_000;

/** Each suite's default options (its generator's second argument) and the values each may take. */
const SUITE_OPTIONS: Record<SuiteName, { defaults: object; ranges: Record<string, readonly [number, number]> }> = {
  'vstar-syn': { defaults: VSTAR_DEFAULTS, ranges: VSTAR_RANGES },
  'tally-syn': { defaults: TALLY_DEFAULTS, ranges: TALLY_RANGES },
  'mvbench-syn': { defaults: MVBENCH_DEFAULTS, ranges: MVBENCH_RANGES },
  'infovqa-syn': { defaults: INFOVQA_DEFAULTS, ranges: INFOVQA_RANGES },
};

/**
 * Option overrides of a suite for training data: a number replaces the default, a [lo, hi] pair
 * draws an integer per task seed (a spread of difficulties: larger targets teach where to look
 * sooner). Evaluation always uses the defaults.
 */
const SuiteOverridesSchema = z.record(z.string(), z.union([z.number(), z.tuple([z.number().int(), z.number().int()])]));
export type SuiteOverrides = z.infer<typeof SuiteOverridesSchema>;

/** Per-suite overrides in a training config, e.g. {"vstar-syn": {"targetSize": [16, 40]}}. */
export const SuiteOptionsSchema = z.record(z.string(), SuiteOverridesSchema).default({});

/** What is wrong with a known suite's overrides: unknown options, values that are not integers in the option's range, reversed pairs. */
function overrideProblems(suite: SuiteName, overrides: SuiteOverrides): { key: string; message: string }[] {
  const { ranges } = SUITE_OPTIONS[suite];
  const problems: { key: string; message: string }[] = [];
  for (const [key, value] of Object.entries(overrides)) {
    const range = ranges[key];
    if (!range) {
      problems.push({ key, message: `suite ${suite} has no option "${key}" (options: ${Object.keys(ranges).join(', ')})` });
      continue;
    }
    const [min, max] = range;
    const values = typeof value === 'number' ? [value] : value;
    if (values.some((v) => !Number.isInteger(v) || v < min || v > max)) problems.push({ key, message: `suite ${suite} option "${key}" takes integers in [${min}, ${max}] (got ${JSON.stringify(value)})` });
    else if (values.length === 2 && values[0]! > values[1]!) problems.push({ key, message: `suite ${suite} option "${key}": the range ${JSON.stringify(value)} is reversed` });
  }
  return problems;
}

/**
 * Refines a training config's `data`: per-suite options name a suite the data draws, options that
 * suite has, and values in their ranges. Without it an option for a suite left out of `suites` is
 * ignored without a word, and a bad value fails hours into a run, when its task is first drawn.
 */
export function checkSuiteOptions(data: { suites: string[]; suite_options: Record<string, SuiteOverrides> }, ctx: z.RefinementCtx): void {
  for (const [name, overrides] of Object.entries(data.suite_options)) {
    if (!data.suites.includes(name)) {
      ctx.addIssue({ code: 'custom', path: ['suite_options', name], message: `options for suite "${name}", which is not in suites (${data.suites.join(', ')})` });
      continue;
    }
    if (!(name in SUITE_OPTIONS)) continue; // an unknown suite name is reported where its tasks are drawn
    for (const p of overrideProblems(name as SuiteName, overrides)) ctx.addIssue({ code: 'custom', path: ['suite_options', name, p.key], message: p.message });
  }
}

export function suiteGenerator(name: string, overrides: SuiteOverrides = {}): (seed: number) => Promise<Task> {
  if (!(name in SUITE_OPTIONS)) throw new Error(`unknown suite "${name}" (available: ${Object.keys(SUITES).join(', ')})`);
  const problem = overrideProblems(name as SuiteName, overrides)[0];
  if (problem) throw new Error(problem.message);
  const { defaults } = SUITE_OPTIONS[name as SuiteName];
  const gen = SUITES[name as SuiteName] as (seed: number, opts?: object) => Promise<Task>;
  if (Object.keys(overrides).length === 0) return gen;
  return (seed) => {
    const rng = new Rng(seed * 2654435761 + 17);
    const opts: Record<string, unknown> = { ...defaults };
    for (const [key, v] of Object.entries(overrides)) opts[key] = typeof v === 'number' ? v : v[0] + rng.int(v[1] - v[0] + 1);
    return gen(seed, opts);
  };
}

/** Tasks of several suites on the same seeds, suite after suite. */
export async function generateSuites(names: string[], n: number, seed: number): Promise<Task[]> {
  return (await Promise.all(names.map((name) => generateSuite(name, n, seed)))).flat();
}

export async function generateSuite(name: string, n: number, seed: number): Promise<Task[]> {
  const gen = suiteGenerator(name);
  return Promise.all(Array.from({ length: n }, (_, i) => gen(seed + i)));
}
