import { readFile } from 'node:fs/promises';
import { initModelDir } from '../model/model-dir.js';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/server.js';
import { EVAL_SEED_BASE, runEval, runTasksExport } from './eval.js';
import { parseEvalArgs } from './eval-args.js';
import { parseServeArgs } from './serve-args.js';
import { num, parseFlags } from './flags.js';
import { runGenerate } from './generate.js';
import { runRl } from '../training/rl.js';
import { runSft } from '../training/sft.js';
import { readRecipe, runRecipe } from '../training/recipe.js';
import { BUNDLED_MODEL_DIR, PACKAGE_ROOT } from '../model/default-model.js';
import { join } from 'node:path';
import { importSnapshot } from '../model/hf/import-snapshot.js';
import { conversionProgress, DEFAULT_WEIGHT_DTYPE, parseWeightDtype } from '../model/hf/model-cache.js';

const USAGE = `pixelreasoner <command>

  serve     [--model DIR|SNAPSHOT] [--dtype fp32|fp16|q8|q4] [--model-cache DIR] [--port N] [--grpc-port N] [--host H] [--config FILE] [--max-model-len N] [--api-key K] ...
  generate  [--model DIR] [--image PATH]... [--video-frames PATH,PATH,...] --prompt TEXT [--max-tokens N]
            [--no-tools] [--json] [--temperature T] [--seed S] [--assistant TEXT] [--dtype D] [--model-cache DIR]
  model init --out DIR [--preset tiny|micro] [--seed N]
  model import SNAPSHOT --out DIR [--dtype fp32|fp16|q8|q4]
            convert a Hugging Face Qwen2.5-VL snapshot into the ONNX layout (serve/generate/eval
            also take a snapshot as --model and convert it once into --model-cache)
  eval      [--model DIR|SNAPSHOT] (--suite NAME[,NAME] | --dataset FILE.jsonl) [--no-tools] [--n N] [--seed S]
            [--max-tokens N] [--json] [--ablations] [--dtype D] [--model-cache DIR]
            --ablations: one table with the model without tools, each of its ablations/*.safetensors
            weights (warm start, RL without curiosity) and the model itself
  tasks export --suite NAME --n N --seed S --out DIR
  train default [--recipe FILE.json] [--out DIR] [--bundle DIR]
            the default model from scratch: SFT, curiosity RL and the no-curiosity ablation
            (recipes/default.json into runs/default, bundled into models/default)
  train sft --config FILE.json
  train rl  --config FILE.json
`;

/** How long in-flight requests may run after SIGTERM before their connections are closed. */
const SHUTDOWN_GRACE_MS = Number(process.env.PIXELREASONER_SHUTDOWN_GRACE_MS ?? 30_000);

async function serve(argv: string[]): Promise<void> {
  const { flags, configFile } = parseServeArgs(argv);
  const config = resolveConfig(flags, process.env, configFile);
  const server = await startServer(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal, grace_ms: SHUTDOWN_GRACE_MS }, 'shutting down: finishing in-flight requests');
    void server.close(SHUTDOWN_GRACE_MS).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'serve') return serve(rest);
  if (command === 'generate') {
    const { values } = parseFlags({
      args: rest,
      options: {
        model: { type: 'string' }, image: { type: 'string', multiple: true }, 'video-frames': { type: 'string' }, prompt: { type: 'string' },
        'max-tokens': { type: 'string' }, 'no-tools': { type: 'boolean' }, json: { type: 'boolean' }, temperature: { type: 'string' },
        seed: { type: 'string' }, assistant: { type: 'string' }, dtype: { type: 'string' }, 'model-cache': { type: 'string' },
      },
    });
    if (values.prompt === undefined) throw new Error('generate needs --prompt');
    return runGenerate({
      model: values.model, images: values.image ?? [], videoFrames: values['video-frames']?.split(','), prompt: values.prompt,
      cache: { dtype: parseWeightDtype(values.dtype), cacheDir: values['model-cache'] }, maxTokens: num(values['max-tokens']) ?? 64,
      noTools: values['no-tools'] ?? false, json: values.json ?? false, temperature: num(values.temperature), seed: num(values.seed),
      assistant: values.assistant,
    });
  }
  if (command === 'eval') return runEval(parseEvalArgs(rest));
  if (command === 'train' && rest[0] === 'default') {
    const { values } = parseFlags({ args: rest.slice(1), options: { recipe: { type: 'string' }, out: { type: 'string' }, bundle: { type: 'string' } } });
    const result = await runRecipe(
      await readRecipe(values.recipe ?? join(PACKAGE_ROOT, 'recipes/default.json')),
      values.out ?? join(PACKAGE_ROOT, 'runs/default'),
      values.bundle ?? BUNDLED_MODEL_DIR,
    );
    console.log(JSON.stringify(result));
    return;
  }
  if (command === 'train' && (rest[0] === 'sft' || rest[0] === 'rl')) {
    const { values } = parseFlags({ args: rest.slice(1), options: { config: { type: 'string' } } });
    if (!values.config) throw new Error(`train ${rest[0]} needs --config FILE.json`);
    const raw = JSON.parse(await readFile(values.config, 'utf8')) as unknown;
    const result = rest[0] === 'sft' ? await runSft(raw) : await runRl(raw);
    console.log(JSON.stringify(result));
    return;
  }
  if (command === 'tasks' && rest[0] === 'export') {
    const { values } = parseFlags({ args: rest.slice(1), options: { suite: { type: 'string' }, n: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' } } });
    if (!values.suite || !values.out) throw new Error('tasks export needs --suite NAME and --out DIR');
    return runTasksExport(values.suite, num(values.n) ?? 50, num(values.seed) ?? EVAL_SEED_BASE, values.out);
  }
  if (command === 'model' && rest[0] === 'import') {
    const { values, positionals } = parseFlags({ args: rest.slice(1), allowPositionals: true, options: { out: { type: 'string' }, dtype: { type: 'string' } } });
    const snapshot = positionals[0];
    if (!snapshot || !values.out) throw new Error('model import needs SNAPSHOT and --out DIR');
    const dtype = parseWeightDtype(values.dtype) ?? DEFAULT_WEIGHT_DTYPE;
    const report = await importSnapshot(snapshot, values.out, dtype, conversionProgress('converting'));
    console.log(JSON.stringify({ out: values.out, ...report }));
    return;
  }
  if (command === 'model' && rest[0] === 'init') {
    const { values } = parseFlags({ args: rest.slice(1), options: { out: { type: 'string' }, preset: { type: 'string' }, seed: { type: 'string' } } });
    if (!values.out) throw new Error('model init needs --out DIR');
    const preset = (values.preset ?? 'tiny') as 'tiny' | 'micro';
    if (!['tiny', 'micro'].includes(preset)) throw new Error(`unknown preset ${preset} (tiny, micro)`);
    await initModelDir(values.out, { preset, seed: num(values.seed) ?? 0 });
    console.log(`wrote ${preset} model (seed ${num(values.seed) ?? 0}) to ${values.out}`);
    return;
  }
  process.stdout.write(USAGE);
  if (command !== undefined && command !== 'help' && command !== '--help') process.exitCode = 2;
}

main().catch((e: unknown) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
