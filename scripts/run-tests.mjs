#!/usr/bin/env node
// Node 20's test runner takes no globs: collect *.test.ts under the given folder and run them
// through tsx. The runner prints the standard TAP/spec summary and exits non-zero on failure.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? 'test';
const filter = process.argv[3];
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts') && (!filter || p.includes(filter))) files.push(p);
  }
};
walk(root);
if (files.length === 0) {
  console.error(`no test files under ${root}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// A hung test fails (and CI moves on) instead of stalling the run: 2 minutes a test in `npm test`,
// 10 in the system suite (real processes, the transformers oracle).
const timeout = process.env.TEST_TIMEOUT_MS ?? (root === 'test' ? '120000' : '600000');
const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeout}`, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
