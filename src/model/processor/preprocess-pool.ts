import { availableParallelism } from 'node:os';
import type { TransferListItem } from 'node:worker_threads';
import { imageRow, type RgbImage } from '../../tools/image.js';
import type { ProcessorConfig } from '../config.js';
import { checkFrames, patchifyInto, pixelCount, resizeFrames, type ResizedFrames, type ResizeJob } from './patchify.js';
import { WorkerPool } from '../../util/worker-pool.js';
import { ReusableBuffers } from '../../util/reusable-buffers.js';

/**
 * Runs preprocessing's resize and patchify in worker threads so the event loop (HTTP, gRPC,
 * streaming) is not blocked by them (~1 s for a large image with PIL). PIXELREASONER_PREPROCESS_WORKERS
 * sets the resize pool's size, read when the pool starts (first use), and patchifies have a pool of that size of their own;
 * 0 runs both inline on the calling thread, checked on every call so tests can compare both.
 */
export const WORKERS_ENV = 'PIXELREASONER_PREPROCESS_WORKERS';

export function preprocessWorkerCount(): number {
  const raw = process.env[WORKERS_ENV];
  if (raw === undefined || raw === '') return Math.min(4, Math.max(1, availableParallelism() - 1));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${WORKERS_ENV} must be a whole number of workers (0: inline), got "${raw}"`);
  return n;
}

const WORKER_ENTRY = new URL('./preprocess-worker.ts', import.meta.url);
let resizePool: WorkerPool | undefined;
/**
 * Patchifies run on workers of their own: the model's runtime waits on them, and in a shared pool they would wait
 * behind the resize a worker is running (~1 s for a large image with PIL), which is for a request not yet scheduled.
 * As many workers as the resize pool: the model patchifies up to two vision calls ahead (OnnxModel.encodeVisual), in
 * parallel where there are cores for them.
 */
let patchifyLane: WorkerPool | undefined;

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
  checkFrames(job, false); // before the copy, which reads whole rows
  const { copy, transfer } = copyFrames();
  resizePool ??= new WorkerPool(WORKER_ENTRY, n);
  const { resized, copied } = await resizePool.run<ResizeAnswer>({ kind: 'resize', ...job, frames: job.frames.map(copy) }, transfer);
  for (const buffer of copied) frameCopies.give(buffer);
  return resized;
}

/**
 * Input pixels up to which patchifying runs on the calling thread (~2 ms into a warm buffer): beyond, a worker's round
 * trip with a copy of the frames costs less than blocking the event loop.
 */
const INLINE_PATCHIFY_PIXELS = 1 << 18;

/**
 * The pixel values of resized visual inputs, one after another, in a buffer taken from `out` (the
 * caller gives it back once the vision encoder has read it). Off the model's runtime thread, which
 * would otherwise sit between vision and decoder calls while it patchifies (~2 ms per 364x280 image).
 */
export async function runPatchify(inputs: ResizedFrames[], processor: ProcessorConfig, out: ReusableBuffers): Promise<Float32Array> {
  const total = inputs.reduce((a, x) => a + pixelCount(x, processor), 0);
  const pixels = new Float32Array(out.take(total * Float32Array.BYTES_PER_ELEMENT), 0, total);
  const n = preprocessWorkerCount();
  if (n === 0 || inputs.reduce((a, x) => a + x.frames.length * x.width * x.height, 0) <= INLINE_PATCHIFY_PIXELS) {
    return patchifyAll(pixels, inputs, processor);
  }
  for (const x of inputs) checkFrames(x, true);
  const { copy, transfer } = copyFrames();
  const task: PatchifyTask = { kind: 'patchify', inputs: inputs.map((x) => ({ ...x, frames: x.frames.map(copy) })), processor, pixels };
  patchifyLane ??= new WorkerPool(WORKER_ENTRY, n);
  const answer = await patchifyLane.run<PatchifyAnswer>(task, [...transfer, pixels.buffer as ArrayBuffer]);
  for (const b of answer.copied) frameCopies.give(b);
  return answer.pixels;
}

/** Patchifies inputs one after another into `pixels` (exactly their pixel count long). */
export function patchifyAll(pixels: Float32Array, inputs: ResizedFrames[], processor: ProcessorConfig): Float32Array {
  let o = 0;
  for (const x of inputs) o += patchifyInto(pixels, o, x, processor);
  return pixels;
}

/**
 * Copies of callers' frames to transfer to a worker: callers keep their images (a request's images
 * serve later crops), and a frame listed twice is copied once.
 */
function copyFrames(): { copy: (f: RgbImage) => RgbImage; transfer: TransferListItem[] } {
  const copies = new Map<RgbImage, RgbImage>();
  const transfer: TransferListItem[] = [];
  const copy = (f: RgbImage) => {
    let c = copies.get(f);
    if (!c) {
      // Row by row: a crop's rows are read in place from its source, not first copied out of it (imageRow).
      const rowBytes = f.width * 3;
      const data = new Uint8Array(frameCopies.take(rowBytes * f.height), 0, rowBytes * f.height);
      for (let y = 0; y < f.height; y++) data.set(imageRow(f, y), y * rowBytes);
      transfer.push(data.buffer);
      c = { data, width: f.width, height: f.height };
      copies.set(f, c);
    }
    return c;
  };
  return { copy, transfer };
}

/** A task of the pool's workers. */
export type PreprocessTask = ({ kind: 'resize' } & ResizeJob) | PatchifyTask;

/** Pixel values of `inputs` to write into `pixels` (exactly their size, on a transferred buffer). */
export interface PatchifyTask {
  kind: 'patchify';
  inputs: ResizedFrames[];
  processor: ProcessorConfig;
  pixels: Float32Array;
}

/** A worker's answer to a patchify: the pixel values (the view it was sent, filled), and the buffers of the frame copies. */
export interface PatchifyAnswer {
  pixels: Float32Array;
  copied: ArrayBuffer[];
}

/** A worker's answer: the resized frames, and the buffers of the copies it was sent (for reuse). */
export interface ResizeAnswer {
  resized: RgbImage[];
  copied: ArrayBuffer[];
}

/** Stops the resize and patchify workers (tests); the next call starts new ones. */
export async function closePreprocessPool(): Promise<void> {
  const pools = [resizePool, patchifyLane];
  resizePool = patchifyLane = undefined;
  await Promise.all(pools.map((p) => p?.close()));
}
