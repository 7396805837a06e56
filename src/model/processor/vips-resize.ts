import { readFileSync } from 'node:fs';
import { imageRow, type RgbImage } from '../../tools/image.js';

/**
 * libvips' bicubic affine resize, bit for bit: the call transformers.js makes through sharp
 * (`affine([w'/w, 0, 0, h'/h], { interpolator: 'bicubic' })`), which the project's own models were
 * trained with. Here its two separable passes run in a WebAssembly SIMD kernel (vips-bicubic.wat),
 * ~1 ms for a 364x280 output where sharp took ~5 ms of CPU in libvips threads, which on a small
 * machine take the cores the model's runtime computes on. The test compares it with sharp on random
 * sizes. References: libvips 8.18's resample/affine.c (coordinates), bicubic.cpp and templates.h
 * (the fixed-point weights and rounding).
 */

/** Sub-pixel positions per pixel (VIPS_TRANSFORM_SCALE) and the weights' fixed-point shift (VIPS_INTERPOLATE_SHIFT). */
const SUBPIXELS = 64;
const SHIFT = 12;
/** Off-image pixels the 4-tap stencil of an in-range position can reach on either side. */
const PAD = 3;

/** Catmull-Rom weights for each of the 65 sub-pixel positions, truncated to fixed point as libvips' class init does. */
const WEIGHTS: Int32Array = (() => {
  const w = new Int32Array((SUBPIXELS + 1) * 4);
  for (let i = 0; i <= SUBPIXELS; i++) {
    const x = i / SUBPIXELS;
    const cr1 = 1 - x;
    const cr3 = cr1 * (-0.5 * x);
    const cone = cr1 * cr3;
    const cfou = x * cr3;
    const cr4 = cfou - cone;
    [cone, cr1 - cone + cr4, x - cfou - cr4, cfou].forEach((c, j) => { w[i * 4 + j] = Math.trunc(c * (1 << SHIFT)); });
  }
  return w;
})();

/** One axis of the transform: per output index, the first source index of its stencil, its 4 weights, and whether it samples the image. */
interface Axis {
  first: Int32Array;
  weights: Int32Array;
  inside: Uint8Array;
}

/**
 * libvips' coordinates for `n` outputs on an axis of `size` source pixels (`inverse` source pixels per
 * output pixel), in the source padded by 2 (its embed) plus the interpolator's offset of 1. Along x
 * they accumulate from the row's left edge (libvips generates full-width strips for a scale); along
 * y each row computes its own. The floating-point steps are libvips' own, in its order: ties between
 * sub-pixel positions are common for sizes with small common factors.
 */
function axis(n: number, inverse: number, size: number, accumulated: boolean): Axis {
  const first = new Int32Array(n);
  const weights = new Int32Array(n * 4);
  const inside = new Uint8Array(n);
  let running = 2;
  for (let o = 0; o < n; o++) {
    const at = accumulated ? running : inverse * o + 1 + 1;
    const whole = Math.floor(at);
    inside[o] = whole >= 1 && whole <= 1 + size ? 1 : 0;
    // The nearest of the 65 positions: twice the resolution, plus one, halved.
    const t = ((Math.trunc(at * SUBPIXELS * 2) & (SUBPIXELS * 2 - 1)) + 1) >> 1;
    for (let j = 0; j < 4; j++) weights[o * 4 + j] = WEIGHTS[t * 4 + j]!; // not set(subarray): one view per output index
    first[o] = Math.trunc(at) - 1 - 2;
    if (accumulated) running += inverse;
  }
  return { first, weights, inside };
}

/** Node's WebAssembly global, which this project's TypeScript libraries (ES2023, Node's types) do not declare. */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
};

interface Kernel {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  horizontal(row: number, colAt: number, weights: number, out: number, n: number): void;
  vertical(r0: number, r1: number, r2: number, r3: number, c0: number, c1: number, c2: number, c3: number, out: number, n: number): void;
}

/** One instance per thread (the main thread, a preprocessing worker), made on first use. */
let kernel: Kernel | undefined;
const loadKernel = (): Kernel =>
  new WebAssembly.Instance(new WebAssembly.Module(readFileSync(new URL('./vips-bicubic.wasm', import.meta.url)))).exports as Kernel;

const up16 = (n: number) => (n + 15) & ~15;

/**
 * Resizes to width x height as sharp's bicubic affine does. Outputs whose stencil centre falls off
 * the image are black (libvips' background), as are off-image taps. Each source row's horizontal
 * pass (rounded, as libvips rounds it) serves every output row that reads it.
 */
export function resizeBicubicVips(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  const sx = width / img.width;
  const sy = height / img.height;
  // libvips inverts the matrix [sx, 0, 0, sy] through its determinant: not quite 1/sx and 1/sy.
  const reciprocal = 1 / (sx * sy - 0 * 0);
  const xs = axis(width, reciprocal * sy, img.width, true);
  const ys = axis(height, reciprocal * sx, img.height, false);

  // The kernel's memory: the padded source row, the columns' stencil offsets and weights, the last four
  // rows' horizontal passes (by row index mod 4: a stencil reads four consecutive rows), a zero row, an output row.
  // The kernel writes and reads whole 16-byte vectors, so every region has slack.
  const k = (kernel ??= loadKernel());
  const rowBytes = up16((img.width + 2 * PAD) * 3 + 16);
  const passBytes = up16(width * 3 + 16) * 4;
  const colAt = rowBytes;
  const weights = colAt + up16(width * 4);
  const ring = weights + width * 16;
  const zero = ring + 4 * passBytes;
  const outRow = zero + passBytes;
  const total = outRow + up16(width * 3 + 16);
  if (k.memory.buffer.byteLength < total) k.memory.grow(Math.ceil((total - k.memory.buffer.byteLength) / 65536));
  const bytes = new Uint8Array(k.memory.buffer);
  const words = new Int32Array(k.memory.buffer);
  bytes.fill(0, 0, total);
  for (let x = 0; x < width; x++) words[colAt / 4 + x] = xs.inside[x] ? (xs.first[x]! + PAD) * 3 : -1;
  words.set(xs.weights, weights / 4);

  const out = new Uint8Array(width * height * 3);
  const ringRow = new Int32Array(4).fill(-1);
  const rows = [zero, zero, zero, zero];
  for (let y = 0; y < height; y++) {
    if (!ys.inside[y]) continue;
    for (let i = 0; i < 4; i++) {
      const r = ys.first[y]! + i;
      if (r < 0 || r >= img.height) {
        rows[i] = zero;
        continue;
      }
      const slot = r & 3;
      const pass = ring + slot * passBytes;
      if (ringRow[slot] !== r) {
        ringRow[slot] = r;
        bytes.set(imageRow(img, r), PAD * 3);
        k.horizontal(0, colAt, weights, pass, width);
      }
      rows[i] = pass;
    }
    const w = y * 4;
    k.vertical(rows[0]!, rows[1]!, rows[2]!, rows[3]!, ys.weights[w]!, ys.weights[w + 1]!, ys.weights[w + 2]!, ys.weights[w + 3]!, outRow, width * 3);
    out.set(bytes.subarray(outRow, outRow + width * 3), y * width * 3);
  }
  return { data: out, width, height };
}
