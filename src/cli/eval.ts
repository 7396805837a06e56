import { readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Engine } from '../engine/engine.js';
import { ModelRunner } from '../engine/model-runner.js';
import { ChatTokenizer } from '../model/chat-tokenizer.js';
import { resolveDefaultModel } from '../model/default-model.js';
import { loadModelFiles, type ModelFiles } from '../model/model-dir.js';
import { readSafetensors } from '../model/safetensors.js';
import { exportTasks, readDataset } from '../training/dataset.js';
import { ABLATIONS_DIR } from '../training/recipe.js';
import { evaluateTasks, summarize, type SuiteScore } from '../training/eval.js';
import { EVAL_SEED_BASE, generateSuite } from '../training/tasks/index.js';
import type { Task } from '../training/tasks/types.js';

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

async function plan(a: EvalArgs, dir: string, files: ModelFiles): Promise<RowPlan[]> {
  if (!a.ablations) return [{ name: files.name, tools: a.tools }];
  const abl = join(dir, ABLATIONS_DIR);
  const found = existsSync(abl) ? (await readdir(abl)).filter((f) => f.endsWith('.safetensors')).map((f) => basename(f, '.safetensors')) : [];
  if (found.length === 0) throw new Error(`--ablations: ${abl} holds no *.safetensors weights`);
  found.sort((x, y) => (ABLATION_ORDER.indexOf(x) + 1 || 99) - (ABLATION_ORDER.indexOf(y) + 1 || 99) || x.localeCompare(y));
  return [
    { name: 'without tools', tools: false },
    ...found.map((n) => ({ name: n, tools: true, weights: join(abl, `${n}.safetensors`) })),
    { name: 'full recipe', tools: true },
  ];
}

async function evaluateRow(row: RowPlan, files: ModelFiles, tasks: Task[], maxTokens: number): Promise<EvalRow> {
  const runner = row.weights ? await ModelRunner.fromWeights(files.config, await readSafetensors(row.weights)) : await ModelRunner.load(files);
  try {
    const engine = new Engine(runner, new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson), files.config, { maxModelLen: files.config.text.max_position_embeddings, maxNumSeqs: 16 });
    const outcomes = await evaluateTasks(engine, tasks, { tools: row.tools, maxTokens });
    return { name: row.name, tools: row.tools, suites: summarize(tasks, outcomes) };
  } finally {
    await runner.release();
  }
}

/** A markdown table: one row per evaluated model, score ± its standard error and RaPR per suite (percent). */
export function evalTable(rows: EvalRow[]): string {
  const suites = Object.keys(rows[0]?.suites ?? {});
  const head = `| model | tools | ${suites.map((s) => `${s} (${rows[0]!.suites[s]!.metric === 'anls' ? 'ANLS' : 'acc'}) | RaPR`).join(' | ')} |`;
  const rule = `|---|---|${suites.map(() => '---|---').join('|')}|`;
  const body = rows.map((r) => `| ${r.name} | ${r.tools ? 'yes' : 'no'} | ${suites.map((s) => `${(100 * r.suites[s]!.score).toFixed(1)} ± ${(100 * r.suites[s]!.score_stderr).toFixed(1)} | ${(100 * r.suites[s]!.rapr).toFixed(1)}`).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}

/** `pixelreasoner eval`: scores per suite (accuracy or ANLS) and RaPR, through the engine and its tool loop. */
export async function runEval(a: EvalArgs): Promise<void> {
  const dir = a.model ?? (await resolveDefaultModel((m) => console.error(m)));
  const files = await loadModelFiles(dir);
  let tasks: Task[] = [];
  if (a.dataset) tasks = await readDataset(a.dataset);
  for (const suite of a.suites ?? []) tasks.push(...(await generateSuite(suite, a.n, a.seed)));
  if (tasks.length === 0) throw new Error('eval needs --suite NAME[,NAME] or --dataset FILE.jsonl');
  const started = performance.now();
  const rows: EvalRow[] = [];
  for (const row of await plan(a, dir, files)) {
    rows.push(await evaluateRow(row, files, tasks, a.maxTokens));
    if (a.ablations) console.error(`evaluated: ${row.name}${row.tools ? '' : ' (no tools)'}`);
  }
  if (!a.json) {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (a.ablations) {
      console.log(`model ${files.name}; ${tasks.length} tasks x ${rows.length} rows in ${seconds} s`);
      console.log(evalTable(rows));
    } else {
      console.log(`model ${files.name}; ${a.tools ? 'with' : 'without'} tools; ${tasks.length} tasks in ${seconds} s`);
      console.log('suite            metric     score  ± s.e.    RaPR  crop hit     n');
      const pct = (x: number | null, width: number) => (x === null ? '-' : (100 * x).toFixed(1)).padStart(width);
      for (const [name, s] of Object.entries(rows[0]!.suites)) console.log(`${name.padEnd(16)} ${s.metric.padEnd(9)} ${pct(s.score, 6)} ${pct(s.score_stderr, 7)} ${pct(s.rapr, 7)} ${pct(s.crop_hit, 9)} ${String(s.n).padStart(5)}`);
    }
  }
  console.log(JSON.stringify(a.ablations ? { rows } : { suites: rows[0]!.suites }));
}

export async function runTasksExport(suite: string, n: number, seed: number, out: string): Promise<void> {
  const file = await exportTasks(await generateSuite(suite, n, seed), out);
  console.log(`wrote ${n} ${suite} tasks (seeds ${seed}..${seed + n - 1}) to ${file}`);
}

export { EVAL_SEED_BASE };
