import type { ProcessorConfig } from '../config.js';
import { pixelBytes, type RgbImage } from '../../tools/image.js';
import { resizeBicubicPil } from './pil-resize.js';
import { resizeBicubicVips } from './vips-resize.js';

const RESCALE = 1 / 255;

/** Frames resized to the size the vision encoder sees: what patchify turns into pixel values. */
export interface ResizedFrames {
  frames: RgbImage[];
  width: number;
  height: number;
}

/** A resize of preprocessing, which may run in a worker thread (see preprocess-pool.ts). */
export interface ResizeJob extends ResizedFrames {
  processor: ProcessorConfig;
}

export function checkFrames({ frames, width, height }: ResizedFrames, resized: boolean): void {
  for (const f of frames) {
    const bytes = pixelBytes(f); // a crop's rows are not copied out of its source to be counted
    if (bytes !== f.width * f.height * 3) throw new Error(`frame data is ${bytes} bytes, expected ${f.width}x${f.height}x3 = ${f.width * f.height * 3}`);
    if (resized && (f.width !== width || f.height !== height)) throw new Error(`frame is ${f.width}x${f.height}, expected it resized to ${width}x${height}`);
  }
}

/**
 * Every frame resized to width x height, bit for bit as the processor the checkpoint was trained
 * with: Pillow's bicubic for 'pil' checkpoints (transformers), libvips' otherwise (transformers.js,
 * through sharp).
 */
export function resizeFrames(job: ResizeJob): RgbImage[] {
  checkFrames(job, false);
  const resize = job.processor.resize_backend === 'pil' ? resizeBicubicPil : resizeBicubicVips;
  return job.frames.map((f) => resize(f, job.width, job.height));
}

/** The patch grid [t, h, w] of `frameCount` frames of width x height (frames pad to a multiple of temporal_patch_size). */
export function patchGrid(frameCount: number, width: number, height: number, p: ProcessorConfig): [number, number, number] {
  return [Math.ceil(frameCount / p.temporal_patch_size), height / p.patch_size, width / p.patch_size];
}

/** Floats in one patch row: (channel, temporal, patch_y, patch_x). */
const patchRowLength = (p: ProcessorConfig) => 3 * p.temporal_patch_size * p.patch_size * p.patch_size;

/** Floats `patchifyInto` writes for these frames. */
export function pixelCount(r: ResizedFrames, p: ProcessorConfig): number {
  const [t, h, w] = patchGrid(r.frames.length, r.width, r.height, p);
  return t * h * w * patchRowLength(p);
}

/**
 * Rescales, normalises and patchifies resized frames into `out` from `offset`, exactly as
 * transformers.js's Qwen2VLImageProcessor (or transformers', for 'pil' checkpoints): one image is
 * repeated temporal_patch_size times; video frames are grouped in pairs (the last repeated if the
 * count is odd). Rows follow (t, h/m, w/m, m, m); each row is (channel, temporal, patch_y, patch_x).
 * Writing into the caller's buffer lets the model's runtime reuse one warm buffer: a fresh one per
 * image pays its page faults (~7 ms for a 364x280 image's 2.4 MB here). Returns the floats written.
 */
export function patchifyInto(out: Float32Array, offset: number, r: ResizedFrames, p: ProcessorConfig): number {
  checkFrames(r, true);
  const { width, height } = r;
  const tp = p.temporal_patch_size;
  const frames = [...r.frames];
  while (frames.length % tp !== 0) frames.push(frames[frames.length - 1]!);
  const ps = p.patch_size;
  const m = p.merge_size;
  const [gt, gh, gw] = patchGrid(r.frames.length, width, height, p);
  if (offset + pixelCount(r, p) > out.length) throw new Error('patchifyInto: output buffer too small');
  // (v/255 - mean)/std for each of the 256 byte values per channel, in the rounding order of the
  // processor the model was trained with: transformers rounds every step to float32 (numpy), and
  // transformers.js only the rescaled value.
  const f = Math.fround;
  const pil = p.resize_backend === 'pil';
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const [mean, std] = [p.image_mean[c]!, p.image_std[c]!];
    for (let v = 0; v < 256; v++) {
      table[c * 256 + v] = pil ? f(f(f(v * RESCALE) - f(mean)) / f(std)) : (f(v * RESCALE) - mean) / std;
    }
  }
  // Each frame's patch is gathered in one pass over its interleaved bytes, the three channels at once;
  // a frame that repeats the previous one (an image fills every temporal slot) copies the blocks just written.
  const block = ps * ps;
  const channelStride = tp * block;
  let o = offset;
  for (let t = 0; t < gt; t++) {
    for (let bh = 0; bh < gh / m; bh++) {
      for (let bw = 0; bw < gw / m; bw++) {
        for (let mh = 0; mh < m; mh++) {
          for (let mw = 0; mw < m; mw++) {
            const start = ((bh * m + mh) * ps * width + (bw * m + mw) * ps) * 3;
            for (let tt = 0; tt < tp; tt++) {
              const frame = frames[t * tp + tt]!;
              const at = o + tt * block;
              if (tt === 0 || frame !== frames[t * tp + tt - 1]) {
                gatherPatch(out, at, frame.data, table, start, width * 3, ps, channelStride);
              } else {
                for (let c = at; c < at + 3 * channelStride; c += channelStride) out.copyWithin(c, c - block, c);
              }
            }
            o += 3 * channelStride;
          }
        }
      }
    }
  }
  return o - offset;
}

/**
 * One frame's patch, all three channels: `ps` rows of `ps` RGB pixels (`rowStride` bytes between
 * rows) from `start`, each byte through its channel's lookup table (`lut`, 256 per channel) to
 * `o`, `o + channelStride` and `o + 2 * channelStride`. One pass over the bytes, not one per channel
 * (~1.6x faster here). A small function over typed arrays and integers: V8 optimizes it within a
 * call or two, where the nested loops around it took ~6 calls of a cold thread at ~15 ms each.
 */
function gatherPatch(
  out: Float32Array, o: number, src: Uint8Array, lut: Float32Array, start: number, rowStride: number, ps: number, channelStride: number,
): void {
  for (let py = 0; py < ps; py++) {
    let k = o + py * ps;
    for (let px = 0, at = start + py * rowStride; px < ps; px++, at += 3, k++) {
      out[k] = lut[src[at]!]!;
      out[k + channelStride] = lut[256 + src[at + 1]!]!;
      out[k + 2 * channelStride] = lut[512 + src[at + 2]!]!;
    }
  }
}

/** The pixel values of resized frames in a buffer of their own ([patches, patch row]): training and tests. */
export function pixelValues(r: ResizedFrames, p: ProcessorConfig): Float32Array {
  const out = new Float32Array(pixelCount(r, p));
  patchifyInto(out, 0, r, p);
  return out;
}
