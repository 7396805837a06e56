import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ONNX_FILES } from '../model-dir.js';
import { WEIGHT_DTYPES, type WeightDtype } from '../onnx/weight-precision.js';
import { hasSafetensors } from './checkpoint-tensors.js';
import { importSnapshot, snapshotKey, TMP_MARK, type ImportProgress } from './import-snapshot.js';
import { ProgressBar } from '../../util/progress.js';

/**
 * Weight precision when the user names none: 8-bit. On a CPU decoding reads every weight once per
 * token, so fp32 is slow and a 7B in fp32 does not fit 24 GB; 8-bit weights read a quarter of the
 * bytes and stay close to the original (README: first tokens equal fp32's on a trained model),
 * while 4-bit is a quarter faster again but drifts from it. GPU users pass --dtype fp16 or fp32.
 */
export const DEFAULT_WEIGHT_DTYPE: WeightDtype = 'q8';

export interface ModelCacheOptions {
  /** Where converted snapshots live (default: $PIXELREASONER_MODEL_CACHE or data/model-cache). */
  cacheDir?: string;
  dtype?: WeightDtype;
  log?: (message: string) => void;
}

export function parseWeightDtype(value: string | undefined): WeightDtype | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(WEIGHT_DTYPES as readonly string[]).includes(value)) throw new Error(`unknown weight dtype "${value}" (${WEIGHT_DTYPES.join(', ')})`);
  return value as WeightDtype;
}

/** A Hugging Face snapshot (safetensors weights, no ONNX graphs of ours) rather than a converted model directory. */
export function isSnapshot(dir: string): boolean {
  return !existsSync(join(dir, ONNX_FILES.decoder)) && hasSafetensors(dir);
}

/** The conversion's progress on the project's progress bar (redrawn on a terminal, a line every few seconds in logs). */
export function conversionProgress(label: string): (p: ImportProgress) => void {
  let bar: ProgressBar | undefined;
  return ({ done, total, tensor }) => {
    bar ??= new ProgressBar(total, label);
    bar.update(done, { tensor: tensor || 'done' });
  };
}

/**
 * The directory to load for `dir`: itself when it is already in the project's layout, else the
 * conversion of the snapshot in the cache (converted first if absent). The cache entry is named by
 * the snapshot's content and the precision, so a later start reuses it and a changed checkpoint
 * gets a new one.
 */
export async function resolveModelDir(dir: string, opts: ModelCacheOptions = {}): Promise<string> {
  if (!isSnapshot(dir)) return dir;
  const dtype = opts.dtype ?? parseWeightDtype(process.env.PIXELREASONER_MODEL_DTYPE) ?? DEFAULT_WEIGHT_DTYPE;
  const cacheDir = resolve(opts.cacheDir ?? (process.env.PIXELREASONER_MODEL_CACHE || 'data/model-cache'));
  const out = join(cacheDir, `${await snapshotKey(dir, dtype)}-${dtype}`);
  if (existsSync(join(out, 'import.json'))) return out;
  // One conversion per entry in this process: a second caller waits for the first.
  let pending = inFlight.get(out);
  if (!pending) {
    pending = convertInto(dir, out, dtype, opts).finally(() => inFlight.delete(out));
    inFlight.set(out, pending);
  }
  return pending;
}

const inFlight = new Map<string, Promise<string>>();

async function convertInto(dir: string, out: string, dtype: WeightDtype, opts: ModelCacheOptions): Promise<string> {
  const cacheDir = dirname(out);
  await mkdir(cacheDir, { recursive: true });
  await removeAbandoned(cacheDir);
  const log = opts.log ?? ((m: string) => console.error(m));
  log(`converting ${dir} to ONNX (${dtype}) in ${out}`);
  try {
    const report = await importSnapshot(dir, out, dtype, conversionProgress('converting'), { keepExisting: true });
    log(`converted in ${report.seconds.toFixed(1)} s, ${(report.weightBytes / 2 ** 20).toFixed(0)} MiB of weights, peak RSS ${(report.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
  } catch (e) {
    // Another process may have converted the same snapshot meanwhile: its complete result is as good.
    if (existsSync(join(out, 'import.json'))) return out;
    throw e;
  }
  return out;
}

/** Temporary folders of conversions whose process is gone (a crash or a kill): tens of GB for a 7B. */
async function removeAbandoned(cacheDir: string): Promise<void> {
  for (const name of readdirSync(cacheDir)) {
    const m = new RegExp(`${TMP_MARK.replace('.', '\\.')}(\\d+)-`).exec(name);
    if (m && !processAlive(Number(m[1]))) await rm(join(cacheDir, name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
