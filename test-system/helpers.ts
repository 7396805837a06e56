import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '../bin/pixelreasoner.js');

/** Fails with the Debian package to install when a system tool is missing. */
export function requireTool(command: string, debianPackage: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} not found: install the Debian package "${debianPackage}" (apt-get install ${debianPackage})`);
  return r.stdout.trim();
}

/** Starts `pixelreasoner serve` as a real process and waits until it listens. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ url: string; grpcPort: number; proc: ChildProcess; output: () => string }> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--grpc-port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)","grpc_port":(\d+)/.exec(out);
      if (m) resolve({ url: m[1]!, grpcPort: Number(m[2]), proc, output: () => out });
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`serve did not start in time: ${out}`)), 120_000).unref();
  });
}

export async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await fetch(`${url}/ready`).catch(() => undefined))?.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server never became ready');
}
