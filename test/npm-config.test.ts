import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = join(import.meta.dirname, '..');
const run = promisify(execFile);

test('the project npm config has no key npm warns about', async () => {
  // npm 11.2+ prints `Unknown project config "..."` for .npmrc keys it does not know, such as
  // onnxruntime-node-install (#27). (The user's own ~/.npmrc is not the project's: only project keys are checked.)
  const { stderr } = await run('npm', ['config', 'list'], { cwd: ROOT });
  assert.doesNotMatch(stderr, /Unknown project config/, stderr);
});

test('npm ci runs no dependency install script, so onnxruntime-node downloads no CUDA libraries, with any npm', async () => {
  // package.json's allowScripts is honoured by npm 11.16+ only; Node 20's npm 10 and npm 11 before
  // 11.16 would run onnxruntime-node's postinstall, which fetches the CUDA libraries from NuGet on
  // Linux x64 (#27). ignore-scripts in .npmrc is honoured by every npm. The environment and the
  // user's config are left out so that the project's own file is what is checked.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_ignore_scripts$/i.test(k)));
  const { stdout } = await run('npm', ['config', 'get', 'ignore-scripts', '--userconfig', '/dev/null'], { cwd: ROOT, env });
  assert.equal(stdout.trim(), 'true');
  assert.match(readFileSync(join(ROOT, '.npmrc'), 'utf8'), /^ignore-scripts=true$/m);
  // Belt and braces for npm 11.16+ run with --ignore-scripts=false.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean>; scripts: Record<string, string> };
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
  // ignore-scripts also silences pre/post scripts of `npm test`, `npm start`, `npm run X`: have none.
  const lifecycle = ['install', 'uninstall', 'test', 'start', 'stop', 'restart', 'prepare', 'pack', 'publish', 'version'];
  const prePost = Object.keys(pkg.scripts).filter((s) => {
    const base = s.replace(/^(pre|post)/, '');
    return base !== s && (base in pkg.scripts || lifecycle.includes(base));
  });
  assert.deepEqual(prePost, []);
});
