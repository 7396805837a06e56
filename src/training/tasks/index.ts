import { tallyTask } from './tally-syn.js';
import type { SuiteName, Task } from './types.js';
import { vstarTask } from './vstar-syn.js';

export type { SuiteName, Task } from './types.js';

/** Suites with a generator so far (mvbench-syn and infovqa-syn are still to come). */
export const SUITES: Partial<Record<SuiteName, (seed: number) => Promise<Task>>> = {
  'vstar-syn': vstarTask,
  'tally-syn': tallyTask,
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
