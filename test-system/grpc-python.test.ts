import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { testImagePng } from '../test/helpers.js';
import { startCli, waitReady } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
// Debian's modules live with Debian's interpreter; the python3 first on PATH may be another one.
const PYTHON = '/usr/bin/python3';

function requirePythonModule(module: string, debianPackage: string): void {
  const r = spawnSync(PYTHON, ['-c', `import ${module}`]);
  if (r.error || r.status !== 0) throw new Error(`${PYTHON} cannot import ${module}: install the Debian package "${debianPackage}" (apt-get install ${debianPackage})`);
}

/** Python stubs for our proto, the health proto and reflection (module paths kept clear of the `grpc` package). */
function generateStubs(): string {
  const dir = join(tmpdir(), `prs-pystubs-${process.pid}`);
  const protos = join(dir, 'protos');
  for (const d of ['pixelreasoner/v1', 'healthproto', 'reflproto']) mkdirSync(join(protos, d), { recursive: true });
  copyFileSync(join(ROOT, 'proto/pixelreasoner/v1/reasoning.proto'), join(protos, 'pixelreasoner/v1/reasoning.proto'));
  copyFileSync(join(ROOT, 'proto/grpc/health/v1/health.proto'), join(protos, 'healthproto/health.proto'));
  copyFileSync(join(ROOT, 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto'), join(protos, 'reflproto/reflection.proto'));
  const r = spawnSync(PYTHON, ['-m', 'grpc_tools.protoc', `-I${protos}`, `--python_out=${dir}`, `--grpc_python_out=${dir}`,
    'pixelreasoner/v1/reasoning.proto', 'healthproto/health.proto', 'reflproto/reflection.proto'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const pkg of ['pixelreasoner', 'pixelreasoner/v1', 'healthproto', 'reflproto']) writeFileSync(join(dir, pkg, '__init__.py'), '');
  return dir;
}

test('a Python grpcio client streams the steps in order, checks health and lists services by reflection', async () => {
  requirePythonModule('grpc', 'python3-grpcio');
  requirePythonModule('grpc_tools', 'python3-grpc-tools');
  const stubs = generateStubs();
  const image = join(tmpdir(), `prs-py-${process.pid}.png`);
  writeFileSync(image, await testImagePng(1000, 800, 4));
  const { url, grpcPort, proc } = await startCli([]);
  try {
    await waitReady(url);
    const r = spawnSync(PYTHON, [join(import.meta.dirname, 'grpc_client.py'), String(grpcPort), stubs, image], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.deepEqual(out.steps.slice(0, 2), ['tool_call', 'tool_result']);
    assert.deepEqual(out.steps.slice(-2), ['final', 'usage']);
    assert.ok(out.steps.slice(2, -2).every((s: string) => s === 'text'));
    assert.deepEqual(out.box, [100, 80, 600, 480]);
    assert.equal(out.health, 'SERVING');
    assert.ok(out.services.includes('pixelreasoner.v1.PixelReasoner'), out.services.join());
    assert.ok(out.services.includes('grpc.health.v1.Health'), out.services.join());
  } finally {
    proc.kill('SIGKILL');
  }
});
