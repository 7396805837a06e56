import type { ModelFiles } from '../model/model-dir.js';
import { evaluateModel, type EvalRow } from './bundle-eval.js';
import { readDataset } from './dataset.js';
import { EVAL_MAX_TOKENS } from './eval.js';
import { EVAL_SEED_BASE, generateSuites } from './tasks/index.js';
import type { Task } from './tasks/types.js';

/** What one `pixelreasoner eval` run does (its flags, parsed by `cli/eval-args.ts`). */
export interface EvalArgs {
  model?: string;
  suites?: string[];
  dataset?: string;
  tools: boolean;
  /** Rows for the model without tools, each of its `ablations/*.safetensors` and the model itself (the paper's Table 1 shape). */
  ablations?: boolean;
  n: number;
  seed: number;
  json: boolean;
  maxTokens: number;
}

export const EVAL_DEFAULT_N = 50;

/**
 * The command line that runs `a` (defaults left out), for reports that quote their command (the
 * bundle's EVAL.md); a test parses it back with the CLI's parser and gets `a`, so the two cannot drift.
 */
export function evalCommandLine(a: EvalArgs): string {
  const flags = [
    a.model !== undefined && `--model ${a.model}`,
    a.ablations && '--ablations',
    a.suites?.length && `--suite ${a.suites.join(',')}`,
    a.dataset !== undefined && `--dataset ${a.dataset}`,
    !a.tools && '--no-tools',
    a.n !== EVAL_DEFAULT_N && `--n ${a.n}`,
    a.seed !== EVAL_SEED_BASE && `--seed ${a.seed}`,
    a.maxTokens !== EVAL_MAX_TOKENS && `--max-tokens ${a.maxTokens}`,
    a.json && '--json',
  ];
  return ['pixelreasoner eval', ...flags.filter((f): f is string => typeof f === 'string')].join(' ');
}

/**
 * Runs what `a` describes on a loaded model: its dataset's tasks and its suites' held-out seeds,
 * one row or the ablation rows. The CLI and the recipe's EVAL.md both go through here, so a
 * report's quoted command is the run it reports.
 */
export async function runEvalArgs(files: ModelFiles, a: EvalArgs, onRow?: (row: EvalRow) => void): Promise<{ tasks: Task[]; rows: EvalRow[]; seconds: number }> {
  const tasks = a.dataset ? await readDataset(a.dataset) : [];
  tasks.push(...(await generateSuites(a.suites ?? [], a.n, a.seed)));
  if (tasks.length === 0) throw new Error('eval needs --suite NAME[,NAME] or --dataset FILE.jsonl');
  const started = performance.now();
  const rows = await evaluateModel(files, tasks, { ablations: a.ablations, tools: a.tools, maxTokens: a.maxTokens, onRow });
  return { tasks, rows, seconds: (performance.now() - started) / 1000 };
}
