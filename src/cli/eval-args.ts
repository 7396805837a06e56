import { parseArgs } from 'node:util';
import { EVAL_MAX_TOKENS } from '../training/eval.js';
import { EVAL_SEED_BASE } from '../training/tasks/index.js';
import { num } from './flags.js';

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

/** `pixelreasoner eval`'s flags (the arguments after `eval`). */
export function parseEvalArgs(argv: string[]): EvalArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, suite: { type: 'string' }, dataset: { type: 'string' }, 'no-tools': { type: 'boolean' },
      n: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' }, 'max-tokens': { type: 'string' },
      ablations: { type: 'boolean' },
    },
  });
  return {
    ablations: values.ablations ?? false,
    model: values.model, suites: values.suite?.split(',').map((x) => x.trim()).filter(Boolean), dataset: values.dataset,
    tools: !values['no-tools'], n: num(values.n) ?? EVAL_DEFAULT_N, seed: num(values.seed) ?? EVAL_SEED_BASE, json: values.json ?? false,
    maxTokens: num(values['max-tokens']) ?? EVAL_MAX_TOKENS,
  };
}

/**
 * The command line that runs `a` (defaults left out), next to the parser so that a report which
 * quotes its command (the bundle's EVAL.md) cannot drift from the flags; parsing it gives `a` back.
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
