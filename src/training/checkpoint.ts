import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Weights } from '../model/weights.js';
import type { AdamState } from './optimizer.js';
import { syncDir, writeSynced } from '../util/files.js';

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

/** The instants of a save, in order; a test stops the save at each one (a crash there). */
export const SAVE_STEPS = ['temp-created', 'weights-written', 'optimizer-written', 'manifest-written', 'old-moved-aside', 'new-moved-in', 'old-removed'] as const;
export type SaveStep = (typeof SAVE_STEPS)[number];

/**
 * Writes a checkpoint directory so that a crash at any instant leaves a complete checkpoint to
 * resume from: the files go into `<dir>.tmp-<pid>`, each fsynced, `checkpoint.json` last (its
 * presence marks the folder complete); then the old checkpoint is renamed aside, the new one into
 * place, and the parent directory fsynced; the old one is removed last. Between the two renames
 * there is no `<dir>`, but both complete folders exist beside it, and `recoverCheckpoint` puts the
 * newer back. Holds all weights (fp32), Adam moments, and the meta (step, data position).
 * `reached` is called at each step of the save (fault-injection tests throw from it).
 */
export async function saveCheckpoint(dir: string, weights: Weights, adam: AdamState, meta: CheckpointMeta, reached: (step: SaveStep) => void = () => {}): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  reached('temp-created');
  const names = [...weights.keys()].sort();
  const w = pack(names.map((n) => [n, weights.get(n)!.dims, weights.get(n)!.data]));
  const moments = [...adam.m.keys()].sort();
  const m = pack(moments.flatMap((n) => [[`m.${n}`, [adam.m.get(n)!.length], adam.m.get(n)!] as [string, number[], Float32Array], [`v.${n}`, [adam.v.get(n)!.length], adam.v.get(n)!] as [string, number[], Float32Array]]));
  await writeSynced(join(tmp, 'weights.bin'), w.bytes);
  reached('weights-written');
  await writeSynced(join(tmp, 'optimizer.bin'), m.bytes);
  await writeSynced(join(tmp, 'optimizer.json'), JSON.stringify({ step: adam.step, tensors: m.tensors }));
  reached('optimizer-written');
  await writeSynced(join(tmp, 'checkpoint.json'), JSON.stringify({ meta, tensors: w.tensors } satisfies Manifest, null, 1));
  await syncDir(tmp);
  reached('manifest-written');
  const old = `${dir}.old-${process.pid}`;
  await rm(old, { recursive: true, force: true });
  if (existsSync(dir)) await rename(dir, old);
  reached('old-moved-aside');
  await rename(tmp, dir);
  await syncDir(dirname(dir));
  reached('new-moved-in');
  await rm(old, { recursive: true, force: true });
  reached('old-removed');
}

/** The step of a complete checkpoint folder (its manifest parses), else undefined. */
async function completeStep(dir: string): Promise<number | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as Manifest;
    return typeof manifest.meta?.step === 'number' && existsSync(join(dir, 'weights.bin')) && existsSync(join(dir, 'optimizer.bin')) ? manifest.meta.step : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Before a resume: puts the newest complete checkpoint at `dir` when a save was interrupted
 * (`dir` missing, or an aside/temporary folder holding a newer complete one), removes the
 * leftovers, and says what it found. Returns whether a checkpoint is there to resume from.
 */
export async function recoverCheckpoint(dir: string, log: (message: string) => void = () => {}): Promise<boolean> {
  const parent = dirname(dir);
  if (!existsSync(parent)) return false;
  const prefix = `${basename(dir)}.`;
  const leftovers = (await readdir(parent)).filter((n) => n.startsWith(prefix) && /\.(tmp|old)-\d+$/.test(n)).map((n) => join(parent, n));
  if (leftovers.length === 0) return (await completeStep(dir)) !== undefined;
  const candidates = await Promise.all([dir, ...leftovers].map(async (path) => ({ path, step: existsSync(path) ? await completeStep(path) : undefined })));
  const best = candidates.filter((c) => c.step !== undefined).sort((a, b) => b.step! - a.step!)[0];
  log(`found an interrupted checkpoint save (${leftovers.map((l) => basename(l)).join(', ')}); `
    + (best ? `resuming from the complete checkpoint of step ${best.step} (${basename(best.path)})` : 'no complete checkpoint among them'));
  if (best && best.path !== dir) {
    const displaced = `${dir}.displaced-${process.pid}`;
    if (existsSync(dir)) await rename(dir, displaced);
    await rename(best.path, dir);
    await rm(displaced, { recursive: true, force: true });
  }
  for (const l of leftovers) if (l !== best?.path) await rm(l, { recursive: true, force: true });
  await syncDir(parent);
  return best !== undefined;
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
