import { Engine } from '../engine/engine.js';
import { ModelRunner } from '../engine/model-runner.js';
import { ChatTokenizer } from '../model/chat-tokenizer.js';
import { resolveDefaultModel } from '../model/default-model.js';
import { loadModelFiles } from '../model/model-dir.js';
import { exportTasks, readDataset } from '../training/dataset.js';
import { evaluateTasks, summarize } from '../training/eval.js';
import { EVAL_SEED_BASE, generateSuite } from '../training/tasks/index.js';
import type { Task } from '../training/tasks/types.js';

export interface EvalArgs {
  model?: string;
  suites?: string[];
  dataset?: string;
  tools: boolean;
  n: number;
  seed: number;
  json: boolean;
  maxTokens: number;
}

/** `pixelreasoner eval`: scores per suite (accuracy or ANLS) and RaPR, through the engine and its tool loop. */
export async function runEval(a: EvalArgs): Promise<void> {
  const files = await loadModelFiles(a.model ?? (await resolveDefaultModel((m) => console.error(m))));
  const runner = await ModelRunner.load(files);
  const engine = new Engine(runner, new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson), files.config, { maxModelLen: files.config.text.max_position_embeddings, maxNumSeqs: 16 });
  let tasks: Task[] = [];
  if (a.dataset) tasks = await readDataset(a.dataset);
  for (const suite of a.suites ?? []) tasks.push(...(await generateSuite(suite, a.n, a.seed)));
  if (tasks.length === 0) throw new Error('eval needs --suite NAME[,NAME] or --dataset FILE.jsonl');
  const started = performance.now();
  const outcomes = await evaluateTasks(engine, tasks, { tools: a.tools, maxTokens: a.maxTokens });
  const suites = summarize(tasks, outcomes);
  await runner.release();
  if (!a.json) {
    console.log(`model ${files.name}; ${a.tools ? 'with' : 'without'} tools; ${tasks.length} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    console.log('suite            metric     score    RaPR     n');
    for (const [name, s] of Object.entries(suites)) console.log(`${name.padEnd(16)} ${s.metric.padEnd(9)} ${(100 * s.score).toFixed(1).padStart(6)} ${(100 * s.rapr).toFixed(1).padStart(7)} ${String(s.n).padStart(5)}`);
  }
  console.log(JSON.stringify({ suites }));
}

export async function runTasksExport(suite: string, n: number, seed: number, out: string): Promise<void> {
  const file = await exportTasks(await generateSuite(suite, n, seed), out);
  console.log(`wrote ${n} ${suite} tasks (seeds ${seed}..${seed + n - 1}) to ${file}`);
}

export { EVAL_SEED_BASE };
