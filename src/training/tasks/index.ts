import { INFOVQA_DEFAULTS, infovqaTask } from './infovqa-syn.js';
import { MVBENCH_DEFAULTS, mvbenchTask } from './mvbench-syn.js';
import { TALLY_DEFAULTS, tallyTask } from './tally-syn.js';
import type { SuiteName, Task } from './types.js';
import { VSTAR_DEFAULTS, vstarTask } from './vstar-syn.js';

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
  'vstar-syn': (seed) => vstarTask(seed, { ...VSTAR_DEFAULTS, targetSize: 48 }),
  'tally-syn': (seed) => tallyTask(seed, { ...TALLY_DEFAULTS, objectSize: 24, gap: 12 }),
  'mvbench-syn': (seed) => mvbenchTask(seed, { ...MVBENCH_DEFAULTS, targetSize: 48 }),
  'infovqa-syn': (seed) => infovqaTask(seed, { ...INFOVQA_DEFAULTS, fontSize: 28, rows: 3 }),
};

/** Held-out evaluation seeds start here; training draws below it. */
export const EVAL_SEED_BASE = 1_000_000;

export function suiteGenerator(name: string): (seed: number) => Promise<Task> {
  const gen = SUITES[name as SuiteName];
  if (!gen) throw new Error(`unknown suite "${name}" (available: ${Object.keys(SUITES).join(', ')})`);
  return gen;
}

export async function generateSuite(name: string, n: number, seed: number): Promise<Task[]> {
  const gen = suiteGenerator(name);
  return Promise.all(Array.from({ length: n }, (_, i) => gen(seed + i)));
}
