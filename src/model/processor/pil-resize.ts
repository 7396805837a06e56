import type { RgbImage } from '../../tools/image.js';

/**
 * Pillow's `Image.resize(size, Image.BICUBIC)` on 8-bit RGB, bit for bit: what transformers'
 * Qwen2VLImageProcessor (the PIL backend) feeds a Hugging Face checkpoint. Pillow resamples with a
 * convolution whose support widens with the downscale factor (antialiasing), horizontal pass first,
 * each pass rounded to 8 bits with coefficients in 22-bit fixed point (libImaging/Resample.c).
 * sharp/libvips have no mode with these exact coefficients and rounding, so it is written here;
 * the loops are the C code's, in the same order, so the integers are the same.
 */
const PRECISION_BITS = 32 - 8 - 2;
const BICUBIC_A = -0.5;
const BICUBIC_SUPPORT = 2;

function bicubic(x: number): number {
  const a = BICUBIC_A;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** C's (int) cast: truncation toward zero. */
const trunc = (x: number) => (x < 0 ? Math.ceil(x) : Math.floor(x));

interface Coefficients {
  ksize: number;
  /** Per output pixel: first input index and count. */
  bounds: Int32Array;
  /** ksize fixed-point weights per output pixel. */
  weights: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc for one axis (input [0, inSize) to outSize pixels). */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    const xmin = Math.max(0, trunc(center - support + 0.5));
    const xmax = Math.min(inSize, trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax ? (ww !== 0 ? k[x]! / ww : k[x]!) : 0;
      weights[xx * ksize + x] = w < 0 ? trunc(-0.5 + w * (1 << PRECISION_BITS)) : trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

/** clip8: the fixed-point sum back to a byte (arithmetic shift, then clamp). */
function clip8(v: number): number {
  const x = v >> PRECISION_BITS;
  return x < 0 ? 0 : x > 255 ? 255 : x;
}

const ROUND = 1 << (PRECISION_BITS - 1);

function resampleHorizontal(src: Uint8Array, srcWidth: number, rows: number, firstRow: number, outWidth: number, c: Coefficients): Uint8Array {
  const out = new Uint8Array(outWidth * rows * 3);
  for (let y = 0; y < rows; y++) {
    const rowBase = (y + firstRow) * srcWidth * 3;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = c.bounds[xx * 2]!;
      const xmax = c.bounds[xx * 2 + 1]!;
      const kBase = xx * c.ksize;
      let s0 = ROUND;
      let s1 = ROUND;
      let s2 = ROUND;
      for (let x = 0; x < xmax; x++) {
        const w = c.weights[kBase + x]!;
        const p = rowBase + (x + xmin) * 3;
        s0 += src[p]! * w;
        s1 += src[p + 1]! * w;
        s2 += src[p + 2]! * w;
      }
      const o = (y * outWidth + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

function resampleVertical(src: Uint8Array, width: number, outHeight: number, c: Coefficients, rowOffset: number): Uint8Array {
  const out = new Uint8Array(width * outHeight * 3);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = c.bounds[yy * 2]! - rowOffset;
    const ymax = c.bounds[yy * 2 + 1]!;
    const kBase = yy * c.ksize;
    for (let x = 0; x < width * 3; x += 3) {
      let s0 = ROUND;
      let s1 = ROUND;
      let s2 = ROUND;
      for (let y = 0; y < ymax; y++) {
        const w = c.weights[kBase + y]!;
        const p = (y + ymin) * width * 3 + x;
        s0 += src[p]! * w;
        s1 += src[p + 1]! * w;
        s2 += src[p + 2]! * w;
      }
      const o = yy * width * 3 + x;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/**
 * Image.resize: ImagingResampleInner's horizontal pass over the rows the vertical pass needs, then
 * the vertical pass; except that Pillow resizes a very tall image (height over 100x its width) that
 * gets shorter vertically first, as two separate resizes.
 */
export function resizeBicubicPil(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  if (img.height > img.width * 100 && height < img.height && width !== img.width) {
    return resizeBicubicPil(resizeBicubicPil(img, img.width, height), width, height);
  }
  const horizontal = coefficients(img.width, width);
  const vertical = coefficients(img.height, height);
  const needHorizontal = width !== img.width;
  const needVertical = height !== img.height;
  let data = img.data;
  let rowOffset = 0;
  if (needHorizontal) {
    const first = vertical.bounds[0]!;
    const last = vertical.bounds[height * 2 - 2]! + vertical.bounds[height * 2 - 1]!;
    const rows = needVertical ? last - first : img.height;
    rowOffset = needVertical ? first : 0;
    data = resampleHorizontal(data, img.width, rows, rowOffset, width, horizontal);
  }
  if (needVertical) data = resampleVertical(data, width, height, vertical, rowOffset);
  return { data, width, height };
}
