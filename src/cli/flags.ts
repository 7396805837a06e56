import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A numeric flag's value (`--n 200`), or undefined when the flag was not given. */
export const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/** A negative number given as an option's value: `-1`, `-0.5`. */
const NEGATIVE_NUMBER = /^-(\d+\.?\d*|\.\d+)$/;

/**
 * node:util's parseArgs, except that a string option followed by a negative number takes it as its
 * value: `--grpc-port -1` (as documented) reads like `--grpc-port=-1`. parseArgs alone refuses the
 * spaced form as ambiguous, since `-1` looks like an option. After `--` nothing is rewritten.
 */
export function parseFlags<T extends ParseArgsConfig & { args: string[] }>(config: T): ReturnType<typeof parseArgs<T>> {
  const takesValue = new Set(Object.entries(config.options ?? {}).filter(([, o]) => o.type === 'string').map(([name]) => `--${name}`));
  const given = config.args;
  const args: string[] = [];
  for (let i = 0; i < given.length; i++) {
    const arg = given[i]!;
    const next = given[i + 1];
    if (arg === '--') {
      args.push(...given.slice(i));
      break;
    }
    if (takesValue.has(arg) && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      args.push(`${arg}=${next}`);
      i++;
    } else {
      args.push(arg);
    }
  }
  return parseArgs({ ...config, args });
}
