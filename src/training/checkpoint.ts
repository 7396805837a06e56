import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Weights } from '../model/weights.js';
import type { AdamState } from './optimizer.js';
import { writeSynced } from '../util/files.js';

/** Progress saved with the weights: the next step to run and where the data order stands. */
export interface CheckpointMeta {
  step: number;
  dataPosition: number;
  [key: string]: unknown;
}

interface Manifest {
  meta: CheckpointMeta;
  tensors: { name: string; dims: number[]; offset: number; length: number }[];
}

function pack(entries: [string, number[], Float32Array][]): { bytes: Uint8Array; tensors: Manifest['tensors'] } {
  const total = entries.reduce((a, [, , d]) => a + d.length, 0);
  const out = new Float32Array(total);
  const tensors: Manifest['tensors'] = [];
  let offset = 0;
  for (const [name, dims, data] of entries) {
    out.set(data, offset);
    tensors.push({ name, dims, offset, length: data.length });
    offset += data.length;
  }
  return { bytes: new Uint8Array(out.buffer), tensors };
}

/**
 * Writes a checkpoint directory atomically: files go into a temp directory, each fsynced, and the
 * directory is renamed into place (a crash leaves either the old checkpoint or the new one, never
 * a torn one). Holds all weights (fp32), Adam moments, and the meta (step, data position).
 */
export async function saveCheckpoint(dir: string, weights: Weights, adam: AdamState, meta: CheckpointMeta): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const names = [...weights.keys()].sort();
  const w = pack(names.map((n) => [n, weights.get(n)!.dims, weights.get(n)!.data]));
  const moments = [...adam.m.keys()].sort();
  const m = pack(moments.flatMap((n) => [[`m.${n}`, [adam.m.get(n)!.length], adam.m.get(n)!] as [string, number[], Float32Array], [`v.${n}`, [adam.v.get(n)!.length], adam.v.get(n)!] as [string, number[], Float32Array]]));
  await writeSynced(join(tmp, 'weights.bin'), w.bytes);
  await writeSynced(join(tmp, 'optimizer.bin'), m.bytes);
  await writeSynced(join(tmp, 'optimizer.json'), JSON.stringify({ step: adam.step, tensors: m.tensors }));
  await writeSynced(join(tmp, 'checkpoint.json'), JSON.stringify({ meta, tensors: w.tensors } satisfies Manifest, null, 1));
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) await rename(dir, old);
  await rename(tmp, dir);
  await rm(old, { recursive: true, force: true });
}

function unpack(bytes: Buffer, tensors: Manifest['tensors']): Map<string, { dims: number[]; data: Float32Array }> {
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const t of tensors) {
    if (t.offset + t.length > all.length) throw new Error(`checkpoint truncated at ${t.name}`);
    out.set(t.name, { dims: t.dims, data: all.slice(t.offset, t.offset + t.length) });
  }
  return out;
}

export async function loadCheckpoint(dir: string): Promise<{ weights: Weights; adam: AdamState; meta: CheckpointMeta }> {
  const manifest = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as Manifest;
  const weights = unpack(await readFile(join(dir, 'weights.bin')), manifest.tensors);
  const opt = JSON.parse(await readFile(join(dir, 'optimizer.json'), 'utf8')) as { step: number; tensors: Manifest['tensors'] };
  const moments = unpack(await readFile(join(dir, 'optimizer.bin')), opt.tensors);
  const adam: AdamState = { step: opt.step, m: new Map(), v: new Map() };
  for (const [name, t] of moments) (name.startsWith('m.') ? adam.m : adam.v).set(name.slice(2), t.data);
  return { weights, adam, meta: manifest.meta };
}
