import { readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Engine } from '../engine/engine.js';
import { openEngine } from '../engine/open-engine.js';
import type { ModelFiles } from '../model/model-dir.js';
import { readSafetensors } from '../model/safetensors.js';
import { evaluateTasks, summarize, type SuiteScore } from './eval.js';
import type { Task } from './tasks/types.js';

/** Where a bundle keeps its ablations' weights (`NAME.safetensors`). */
export const ABLATIONS_DIR = 'ablations';

/** Ablation weights a bundled model carries, in the order the paper's table lists them. */
const ABLATION_ORDER = ['warm-start', 'rl-no-curiosity'];

export interface EvalRow {
  name: string;
  tools: boolean;
  suites: Record<string, SuiteScore>;
}

interface RowPlan {
  name: string;
  tools: boolean;
  /** Weights replacing the model's own (an ablation), or none. */
  weights?: string;
}

async function plan(files: ModelFiles, opts: EvaluateModelOptions): Promise<RowPlan[]> {
  if (!opts.ablations) return [{ name: files.name, tools: opts.tools }];
  const abl = join(files.dir, ABLATIONS_DIR);
  const found = existsSync(abl) ? (await readdir(abl)).filter((f) => f.endsWith('.safetensors')).map((f) => basename(f, '.safetensors')) : [];
  if (found.length === 0) throw new Error(`--ablations: ${abl} holds no *.safetensors weights`);
  found.sort((x, y) => (ABLATION_ORDER.indexOf(x) + 1 || 99) - (ABLATION_ORDER.indexOf(y) + 1 || 99) || x.localeCompare(y));
  return [
    { name: 'without tools', tools: false },
    ...found.map((n) => ({ name: n, tools: true, weights: join(abl, `${n}.safetensors`) })),
    { name: 'full recipe', tools: true },
  ];
}

async function evaluateRow(row: RowPlan, engine: Engine, tasks: Task[], maxTokens: number): Promise<EvalRow> {
  const outcomes = await evaluateTasks(engine, tasks, { tools: row.tools, maxTokens });
  return { name: row.name, tools: row.tools, suites: summarize(tasks, outcomes) };
}

/** A markdown table: one row per evaluated model, score ± its standard error and RaPR per suite (percent). */
export function evalTable(rows: EvalRow[]): string {
  const suites = Object.keys(rows[0]?.suites ?? {});
  const head = `| model | tools | ${suites.map((s) => `${s} (${rows[0]!.suites[s]!.metric === 'anls' ? 'ANLS' : 'acc'}) | RaPR`).join(' | ')} |`;
  const rule = `|---|---|${suites.map(() => '---|---').join('|')}|`;
  const body = rows.map((r) => `| ${r.name} | ${r.tools ? 'yes' : 'no'} | ${suites.map((s) => `${(100 * r.suites[s]!.score).toFixed(1)} ± ${(100 * r.suites[s]!.score_stderr).toFixed(1)} | ${(100 * r.suites[s]!.rapr).toFixed(1)}`).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}

export interface EvaluateModelOptions {
  /** Rows for the model without tools, each of its `ablations/*.safetensors` and the model itself (the paper's Table 1 shape). */
  ablations?: boolean;
  /** Without ablations: whether the one row offers the tools. */
  tools: boolean;
  maxTokens: number;
  /** Called after each row (progress on a long evaluation). */
  onRow?: (row: EvalRow) => void;
}

/** Scores a model directory on the tasks: one row, or the ablation rows of a bundle. */
export async function evaluateModel(files: ModelFiles, tasks: Task[], opts: EvaluateModelOptions): Promise<EvalRow[]> {
  // The model's own weights serve both its rows (without tools, full recipe): loaded once.
  let own: Engine | undefined;
  const rows: EvalRow[] = [];
  try {
    for (const row of await plan(files, opts)) {
      if (row.weights) {
        const engine = await openEngine(files, { weights: await readSafetensors(row.weights) });
        try {
          rows.push(await evaluateRow(row, engine, tasks, opts.maxTokens));
        } finally {
          await engine.release();
        }
      } else {
        own ??= await openEngine(files);
        rows.push(await evaluateRow(row, own, tasks, opts.maxTokens));
      }
      opts.onRow?.(rows.at(-1)!);
    }
  } finally {
    await own?.release();
  }
  return rows;
}
