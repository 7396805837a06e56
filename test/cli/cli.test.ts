import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { testImagePng, testModel } from '../helpers.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/pixelreasoner.js');

test('pixelreasoner generate --json prints the result object on its last line', async () => {
  const model = await testModel('micro', 0);
  const image = join(tmpdir(), `prs-cli-${process.pid}.png`);
  await writeFile(image, await testImagePng(320, 240, 2));
  const { stdout } = await run(process.execPath, [BIN, 'generate', '--model', model, '--image', image, '--prompt', 'What is this?', '--max-tokens', '6', '--json']);
  const last = JSON.parse(stdout.trim().split('\n').at(-1)!);
  assert.ok(Array.isArray(last.prompt_token_ids) && last.prompt_token_ids.length > 10);
  assert.ok(Array.isArray(last.token_ids) && last.token_ids.length > 0 && last.token_ids.length <= 6);
  assert.equal(typeof last.text, 'string');
  assert.ok(Array.isArray(last.steps));
  // Greedy is deterministic.
  const again = await run(process.execPath, [BIN, 'generate', '--model', model, '--image', image, '--prompt', 'What is this?', '--max-tokens', '6', '--json']);
  assert.deepEqual(JSON.parse(again.stdout.trim().split('\n').at(-1)!).token_ids, last.token_ids);
});

test('unknown command prints usage and exits 2', async () => {
  await assert.rejects(run(process.execPath, [BIN, 'frobnicate']), (e: { code: number; stdout: string }) => e.code === 2 && e.stdout.includes('pixelreasoner <command>'));
});

test('pixelreasoner serve --grpc-port -1 serves HTTP without gRPC', async () => {
  const model = await testModel('micro', 0);
  const child = spawn(process.execPath, [BIN, 'serve', '--model', model, '--host', '127.0.0.1', '--port', '0', '--grpc-port', '-1', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  try {
    // The JSON log line `listening` carries the HTTP url and, when gRPC is on, grpc_port.
    let listening: { url: string; grpc_port?: number } | undefined;
    for await (const line of createInterface({ input: child.stdout })) {
      const entry = JSON.parse(line) as { msg: string; url: string; grpc_port?: number };
      if (entry.msg === 'listening') {
        listening = entry;
        break;
      }
    }
    assert.ok(listening, `serve exited before listening: ${stderr}`);
    assert.equal(listening.grpc_port, undefined);
    assert.equal((await fetch(`${listening.url}/health`)).status, 200);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});
