import { EVAL_DEFAULT_N, type EvalArgs } from '../training/eval-command.js';
import { EVAL_MAX_TOKENS } from '../training/eval.js';
import { EVAL_SEED_BASE } from '../training/tasks/index.js';
import { num, parseFlags } from './flags.js';
import { parseWeightDtype, type ModelCacheOptions } from '../model/hf/model-cache.js';

/** `pixelreasoner eval`'s flags (the arguments after `eval`). */
export function parseEvalArgs(argv: string[]): EvalArgs & { cache?: ModelCacheOptions } {
  const { values } = parseFlags({
    args: argv,
    options: {
      model: { type: 'string' }, suite: { type: 'string' }, dataset: { type: 'string' }, 'no-tools': { type: 'boolean' },
      n: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' }, 'max-tokens': { type: 'string' },
      ablations: { type: 'boolean' }, dtype: { type: 'string' }, 'model-cache': { type: 'string' },
    },
  });
  return {
    ablations: values.ablations ?? false,
    model: values.model, suites: values.suite?.split(',').map((x) => x.trim()).filter(Boolean), dataset: values.dataset,
    tools: !values['no-tools'], n: num(values.n) ?? EVAL_DEFAULT_N, seed: num(values.seed) ?? EVAL_SEED_BASE, json: values.json ?? false,
    maxTokens: num(values['max-tokens']) ?? EVAL_MAX_TOKENS,
    // Only when given: how a Hugging Face snapshot named by --model is converted (not part of the eval's own arguments).
    ...(values.dtype || values['model-cache'] ? { cache: { dtype: parseWeightDtype(values.dtype), cacheDir: values['model-cache'] } } : {}),
  };
}
