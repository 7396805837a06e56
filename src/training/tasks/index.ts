import { TALLY_DEFAULTS, tallyTask } from './tally-syn.js';
import type { SuiteName, Task } from './types.js';
import { VSTAR_DEFAULTS, vstarTask } from './vstar-syn.js';

export type { SuiteName, Task } from './types.js';

/** Suites with a generator so far (mvbench-syn and infovqa-syn are still to come). */
export const SUITES: Partial<Record<SuiteName, (seed: number) => Promise<Task>>> = {
  'vstar-syn': vstarTask,
  'tally-syn': tallyTask,
};

/**
 * Easy variants whose answer is readable at the model's input resolution: the questions of the
 * text-only ("direct") SFT traces, so the model also learns when a zoom is not needed.
 */
export const EASY_SUITES: Partial<Record<SuiteName, (seed: number) => Promise<Task>>> = {
  'vstar-syn': (seed) => vstarTask(seed, { ...VSTAR_DEFAULTS, targetSize: 48 }),
  'tally-syn': (seed) => tallyTask(seed, { ...TALLY_DEFAULTS, objectSize: 24, gap: 12 }),
};

/** Held-out evaluation seeds start here; training draws below it. */
export const EVAL_SEED_BASE = 1_000_000;

export function suiteGenerator(name: string): (seed: number) => Promise<Task> {
  const gen = SUITES[name as SuiteName];
  if (!gen) throw new Error(`unknown or not yet available suite "${name}" (available: ${Object.keys(SUITES).join(', ')})`);
  return gen;
}

export async function generateSuite(name: string, n: number, seed: number): Promise<Task[]> {
  const gen = suiteGenerator(name);
  return Promise.all(Array.from({ length: n }, (_, i) => gen(seed + i)));
}
