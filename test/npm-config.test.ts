import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = join(import.meta.dirname, '..');

test('the project npm config has no key npm warns about, and onnxruntime-node\'s CUDA download stays denied', async () => {
  // npm 11.2+ prints `Unknown project config "..."` for .npmrc keys it does not know (#27).
  // (The user's own ~/.npmrc is not the project's: only project keys are checked.)
  const { stderr } = await promisify(execFile)('npm', ['config', 'list'], { cwd: ROOT });
  assert.doesNotMatch(stderr, /Unknown project config/, stderr);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
});
