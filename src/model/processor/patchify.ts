import type { ProcessorConfig } from '../config.js';
import type { RgbImage } from '../../tools/image.js';
import { resizeBicubicPil } from './pil-resize.js';

const RESCALE = 1 / 255;

/** The synchronous part of preprocessing, which runs in a worker thread (see preprocess-pool.ts). */
export interface PreprocessJob {
  /** Frames as decoded when processor.resize_backend is 'pil' (resized here), else already width x height. */
  frames: RgbImage[];
  width: number;
  height: number;
  processor: ProcessorConfig;
}

export interface PreprocessResult {
  pixelValues: Float32Array<ArrayBuffer>;
  grid: [number, number, number];
}

/**
 * PIL resize (for 'pil' checkpoints), rescale, normalise and patchify, exactly as
 * transformers.js's Qwen2VLImageProcessor: one image is repeated temporal_patch_size times; video
 * frames are grouped in pairs (the last repeated if the count is odd). Rows follow
 * (t, h/m, w/m, m, m); each row is (channel, temporal, patch_y, patch_x).
 */
export function preprocessSync({ frames, width, height, processor: p }: PreprocessJob): PreprocessResult {
  const pil = p.resize_backend === 'pil';
  for (const f of frames) {
    if (f.data.length !== f.width * f.height * 3) throw new Error(`frame data is ${f.data.length} bytes, expected ${f.width}x${f.height}x3 = ${f.width * f.height * 3}`);
    if (!pil && (f.width !== width || f.height !== height)) throw new Error(`frame is ${f.width}x${f.height}, expected it resized to ${width}x${height}`);
  }
  const resized = pil ? frames.map((f) => resizeBicubicPil(f, width, height)) : [...frames];
  const tp = p.temporal_patch_size;
  while (resized.length % tp !== 0) resized.push(resized[resized.length - 1]!);
  const ps = p.patch_size;
  const m = p.merge_size;
  const gt = resized.length / tp;
  const gh = height / ps;
  const gw = width / ps;
  const rowLen = 3 * tp * ps * ps;
  const out = new Float32Array(gt * gh * gw * rowLen);
  // (v/255 - mean)/std for each of the 256 byte values per channel, in the rounding order of the
  // processor the model was trained with: transformers rounds every step to float32 (numpy), and
  // transformers.js only the rescaled value.
  const f = Math.fround;
  const table = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (pil
    ? f(f(f(v * RESCALE) - f(p.image_mean[c]!)) / f(p.image_std[c]!))
    : (f(v * RESCALE) - p.image_mean[c]!) / p.image_std[c]!)));
  // Each patch row is gathered straight from the interleaved bytes through the table; a frame that
  // repeats the previous one (an image fills every temporal slot) copies the block just written.
  const block = ps * ps;
  let o = 0;
  for (let t = 0; t < gt; t++) {
    for (let bh = 0; bh < gh / m; bh++) {
      for (let bw = 0; bw < gw / m; bw++) {
        for (let mh = 0; mh < m; mh++) {
          for (let mw = 0; mw < m; mw++) {
            const y0 = (bh * m + mh) * ps;
            const x0 = (bw * m + mw) * ps;
            for (let c = 0; c < 3; c++) {
              const lut = table[c]!;
              for (let tt = 0; tt < tp; tt++) {
                const frame = resized[t * tp + tt]!;
                if (tt > 0 && frame === resized[t * tp + tt - 1]) {
                  out.copyWithin(o, o - block, o);
                  o += block;
                  continue;
                }
                const src = frame.data;
                for (let py = 0; py < ps; py++) {
                  for (let px = 0, at = ((y0 + py) * width + x0) * 3 + c; px < ps; px++, at += 3) out[o++] = lut[src[at]!]!;
                }
              }
            }
          }
        }
      }
    }
  }
  return { pixelValues: out, grid: [gt, gh, gw] };
}
