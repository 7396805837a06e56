import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { dataUrl, testImagePng } from '../test/helpers.js';

const BIN = join(import.meta.dirname, '../bin/pixelreasoner.js');

/** Starts `pixelreasoner serve` (the command `npm start` runs) as a real process and waits for it to listen. */
function startCli(args: string[]): Promise<{ url: string; proc: ReturnType<typeof spawn> }> {
  const proc = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolve({ url: m[1]!, proc });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`serve did not start in time: ${out}`)), 120_000).unref();
  });
}

test('serve with the default model answers the openai client, then exits 0 on SIGTERM', async () => {
  const { url, proc } = await startCli(['--port', '0', '--host', '127.0.0.1', '--default-max-tokens', '8']);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  const r = await client.chat.completions.create({
    model: models.data[0]!.id,
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl(await testImagePng(500, 400)) } }, { type: 'text', text: 'What is this?' }] }],
  });
  assert.ok(r.choices[0]!.finish_reason);
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  proc.kill('SIGTERM');
  assert.equal(await exit, 0);
});
