import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFlags } from '../../src/cli/flags.js';
import { parseServeArgs } from '../../src/cli/serve-args.js';
import { resolveConfig } from '../../src/server/config.js';

const configOf = (argv: string[]) => {
  const { flags, configFile } = parseServeArgs(argv);
  return resolveConfig(flags, {}, configFile);
};

test('serve takes --grpc-port -1 (gRPC off) spaced and with =, before or after other flags', () => {
  assert.equal(configOf(['--grpc-port', '-1']).grpcPort, -1);
  assert.equal(configOf(['--grpc-port=-1']).grpcPort, -1);
  const c = configOf(['--port', '9000', '--grpc-port', '-1', '--max-num-seqs', '4']);
  assert.deepEqual([c.port, c.grpcPort, c.maxNumSeqs], [9000, -1, 4]);
  assert.equal(configOf(['--grpc-port', '50052']).grpcPort, 50052);
  // Below -1 is still refused, by the config schema.
  assert.throws(() => configOf(['--grpc-port', '-2']), /grpcPort/);
});

test('a string flag takes a following negative number as its value; a following flag is still refused', () => {
  const options = { seed: { type: 'string' }, scale: { type: 'string' }, json: { type: 'boolean' } } as const;
  assert.deepEqual({ ...parseFlags({ args: ['--seed', '-3', '--scale', '-0.5', '--json'], options }).values }, { seed: '-3', scale: '-0.5', json: true });
  // A boolean flag never takes a value, and nothing after `--` is rewritten.
  assert.throws(() => parseFlags({ args: ['--json', '-1'], options }), /Unknown option '-1'/);
  assert.deepEqual(parseFlags({ args: ['--', '--seed', '-3'], options, allowPositionals: true }).positionals, ['--seed', '-3']);
  assert.throws(() => parseFlags({ args: ['--seed', '--json'], options }), /ambiguous/);
  assert.throws(() => parseFlags({ args: ['--seed', '-x'], options }), /ambiguous/);
});
