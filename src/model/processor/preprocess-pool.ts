import { availableParallelism } from 'node:os';
import type { TransferListItem } from 'node:worker_threads';
import type { RgbImage } from '../../tools/image.js';
import { resizeFrames, type ResizeJob } from './patchify.js';
import { WorkerPool } from '../../util/worker-pool.js';
import { ReusableBuffers } from '../../util/reusable-buffers.js';

/**
 * Runs preprocessing's resize in worker threads so the event loop (HTTP, gRPC, streaming) is not
 * blocked by it (~1 s for a large image with PIL). PIXELREASONER_PREPROCESS_WORKERS
 * sets the pool size, read when the pool starts (first use); 0 runs inline on the calling thread,
 * checked on every call so tests can compare both.
 */
export const WORKERS_ENV = 'PIXELREASONER_PREPROCESS_WORKERS';

export function preprocessWorkerCount(): number {
  const raw = process.env[WORKERS_ENV];
  if (raw === undefined || raw === '') return Math.min(4, Math.max(1, availableParallelism() - 1));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${WORKERS_ENV} must be a whole number of workers (0: inline), got "${raw}"`);
  return n;
}

let pool: WorkerPool | undefined;

/**
 * The copies of callers' frames that travel to a worker, handed back with its answer and reused: a
 * fresh copy of a 2000x1500 image paid ~30 ms of page faults on the event loop's thread.
 */
const frameCopies = new ReusableBuffers();

/**
 * Output pixels up to which libvips' resize (WebAssembly, ~1 ms per 100k pixels) runs on the calling
 * thread (~3 ms): a worker's round trip, with its copy of the source image, would cost as much.
 */
const INLINE_VIPS_PIXELS = 1 << 18;

/** Runs a resize job in a worker; on the calling thread when the pool is off (0 workers) or the job is a small libvips one. */
export async function runResize(job: ResizeJob): Promise<RgbImage[]> {
  const n = preprocessWorkerCount();
  const small = job.processor.resize_backend !== 'pil' && job.frames.length * job.width * job.height <= INLINE_VIPS_PIXELS;
  if (n === 0 || small) return resizeFrames(job);
  pool ??= new WorkerPool(new URL('./preprocess-worker.ts', import.meta.url), n);
  // Callers keep their images (a request's images serve later crops), so the bytes go over as
  // copies, transferred; a frame listed twice is copied once.
  const copies = new Map<RgbImage, RgbImage>();
  const transfer: TransferListItem[] = [];
  const frames = job.frames.map((f) => {
    let c = copies.get(f);
    if (!c) {
      const data = new Uint8Array(frameCopies.take(f.data.length), 0, f.data.length);
      data.set(f.data);
      transfer.push(data.buffer);
      c = { data, width: f.width, height: f.height };
      copies.set(f, c);
    }
    return c;
  });
  const { resized, copied } = await pool.run<ResizeAnswer>({ ...job, frames }, transfer);
  for (const buffer of copied) frameCopies.give(buffer);
  return resized;
}

/** A worker's answer: the resized frames, and the buffers of the copies it was sent (for reuse). */
export interface ResizeAnswer {
  resized: RgbImage[];
  copied: ArrayBuffer[];
}

/** Stops the pool's workers (tests); the next call starts a new pool. */
export async function closePreprocessPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}
