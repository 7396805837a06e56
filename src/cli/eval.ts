import { resolveDefaultModel } from '../model/default-model.js';
import { loadModelFiles } from '../model/model-dir.js';
import type { ModelCacheOptions } from '../model/hf/model-cache.js';
import { evalTable } from '../training/bundle-eval.js';
import { exportTasks } from '../training/dataset.js';
import { runEvalArgs, type EvalArgs } from '../training/eval-command.js';
import { EVAL_SEED_BASE, generateSuite } from '../training/tasks/index.js';

/** `pixelreasoner eval`: scores per suite (accuracy or ANLS) and RaPR, through the engine and its tool loop. */
export async function runEval(a: EvalArgs & { cache?: ModelCacheOptions }): Promise<void> {
  const dir = a.model ?? (await resolveDefaultModel((m) => console.error(m)));
  const files = await loadModelFiles(dir, a.cache);
  const { tasks, rows, seconds: elapsed } = await runEvalArgs(files, a, (row) => { if (a.ablations) console.error(`evaluated: ${row.name}${row.tools ? '' : ' (no tools)'}`); });
  if (!a.json) {
    const seconds = elapsed.toFixed(1);
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
