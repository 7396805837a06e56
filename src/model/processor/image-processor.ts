import type { ProcessorConfig } from '../config.js';
import { resizeBicubic, type RgbImage } from '../../tools/image.js';
import { resizeBicubicPil } from './pil-resize.js';

const RESCALE = 1 / 255;

/** Python's round() (half to even): transformers' smart_resize and PIL's crop of float boxes use it. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Qwen2-VL smart_resize: returns [width, height], multiples of factor, within the pixel budget.
 * `python` follows transformers (Python's round, no upscaling of sides below factor first);
 * otherwise transformers.js's variant, which the project's own models were trained with.
 */
export function smartResize(height: number, width: number, factor: number, minPixels: number, maxPixels: number, python = false): [number, number] {
  const round = python ? roundHalfEven : Math.round;
  if (!python && (height < factor || width < factor)) {
    const scale = Math.max(factor / height, factor / width);
    height = Math.round(height * scale);
    width = Math.round(width * scale);
  }
  if (Math.max(height, width) / Math.min(height, width) > 200) {
    throw new Error(`absolute aspect ratio must be smaller than 200, got ${Math.max(height, width) / Math.min(height, width)}`);
  }
  let hBar = round(height / factor) * factor;
  let wBar = round(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return [wBar, hBar];
}

/** Model-ready visual input: patches in merge order and their [t, h, w] grid (in patches). */
export interface VisualInput {
  pixelValues: Float32Array;
  grid: [number, number, number];
  /** Size the frames were resized to before patching. */
  width: number;
  height: number;
  /** Tokens this input occupies in the text sequence: t*h*w / merge². */
  numTokens: number;
}

export function resizeTarget(img: { width: number; height: number }, p: ProcessorConfig, budget?: { min: number; max: number }): [number, number] {
  return smartResize(img.height, img.width, p.patch_size * p.merge_size, budget?.min ?? p.min_pixels, budget?.max ?? p.max_pixels, p.resize_backend === 'pil');
}

/**
 * Resizes, rescales, normalises and patchifies frames exactly as transformers.js's
 * Qwen2VLImageProcessor: one image is repeated temporal_patch_size times; video frames are
 * grouped in pairs (the last repeated if the count is odd). Rows follow
 * (t, h/m, w/m, m, m); each row is (channel, temporal, patch_y, patch_x).
 */
export async function preprocessFrames(frames: RgbImage[], p: ProcessorConfig, budget?: { min: number; max: number }): Promise<VisualInput> {
  const [width, height] = resizeTarget(frames[0]!, p, budget);
  // Transformers' processor (Pillow, numpy float32) for imported checkpoints; transformers.js's otherwise.
  const pil = p.resize_backend === 'pil';
  const resize = pil ? async (f: RgbImage) => resizeBicubicPil(f, width, height) : (f: RgbImage) => resizeBicubic(f, width, height);
  const resized = await Promise.all(frames.map(resize));
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
  // Normalised planes [frame][channel] (width*height each), so patch rows are copied as runs.
  const planes = resized.map((img, f) => (f > 0 && img === resized[f - 1] ? undefined : [0, 1, 2].map((c) => {
    const plane = new Float32Array(width * height);
    const lut = table[c]!;
    const src = img.data;
    for (let i = 0, j = c; i < plane.length; i++, j += 3) plane[i] = lut[src[j]!]!;
    return plane;
  })));
  for (let f = 1; f < planes.length; f++) planes[f] ??= planes[f - 1];
  let row = 0;
  for (let t = 0; t < gt; t++) {
    for (let bh = 0; bh < gh / m; bh++) {
      for (let bw = 0; bw < gw / m; bw++) {
        for (let mh = 0; mh < m; mh++) {
          for (let mw = 0; mw < m; mw++) {
            const y0 = (bh * m + mh) * ps;
            const x0 = (bw * m + mw) * ps;
            let o = row * rowLen;
            for (let c = 0; c < 3; c++) {
              for (let tt = 0; tt < tp; tt++) {
                const plane = planes[t * tp + tt]![c]!;
                for (let py = 0; py < ps; py++, o += ps) {
                  const at = (y0 + py) * width + x0;
                  out.set(plane.subarray(at, at + ps), o);
                }
              }
            }
            row++;
          }
        }
      }
    }
  }
  return { pixelValues: out, grid: [gt, gh, gw], width, height, numTokens: (gt * gh * gw) / (m * m) };
}
