import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import type { ProcessorConfig } from '../../../src/model/config.js';
import { preprocessFrames } from '../../../src/model/processor/image-processor.js';
import { closePreprocessPool } from '../../../src/model/processor/preprocess-pool.js';
import { resizeBicubicVips } from '../../../src/model/processor/vips-resize.js';
import sharp from 'sharp';
import type { RgbImage } from '../../../src/tools/image.js';
import { assemble, WASM, WAT } from '../../../scripts/build-wasm.js';

after(closePreprocessPool);

/** The oracle: sharp's bicubic affine, the call transformers.js's Qwen2VLImageProcessor (resample = 3) makes in Node. */
async function resizeBicubic(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .affine([width / img.width, 0, 0, height / img.height], { interpolator: 'bicubic' }).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/** A seeded generator, so a failure names a case that can be rerun. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

/** Noise (every tap matters) or a ramp with a hard edge (clipping of Catmull-Rom's overshoot). */
function image(width: number, height: number, rnd: () => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  const ramp = rnd() < 0.5;
  for (let i = 0; i < data.length; i++) {
    const x = Math.floor(i / 3) % width;
    data[i] = ramp ? (x < width / 2 ? 0 : 255) ^ ((i * 7) & 31) : Math.floor(rnd() * 256);
  }
  return { data, width, height };
}

const same = (a: RgbImage, b: RgbImage) => a.width === b.width && a.height === b.height && Buffer.from(a.data).equals(Buffer.from(b.data));

test('equals sharp\'s bicubic affine (what transformers.js calls) byte for byte over random sizes and scales', async () => {
  const rnd = random(20261207);
  const cases: [number, number, number, number][] = [
    // The processor's usual shapes: a photo down to its budget, a crop up to the minimum, scales with small common factors
    // (sub-pixel ties), one-pixel sides, and a side that is left as it is.
    [640, 480, 364, 280], [1600, 1000, 420, 252], [192, 120, 364, 224], [1024, 768, 512, 384], [1, 1, 28, 28], [300, 1, 56, 28], [28, 900, 28, 448],
  ];
  for (let k = 0; k < 160; k++) {
    const small = k < 40;
    const side = (max: number) => 1 + Math.floor(rnd() * max);
    cases.push([side(small ? 24 : 1200), side(small ? 24 : 900), side(small ? 64 : 600), side(small ? 64 : 600)]);
  }
  for (const [w, h, ow, oh] of cases) {
    const img = image(w, h, rnd);
    const ours = resizeBicubicVips(img, ow, oh);
    const theirs = await resizeBicubic(img, ow, oh);
    assert.ok(same(ours, theirs), `${w}x${h} -> ${ow}x${oh} differs from sharp`);
  }
});

test('a frame already at the size is returned as it is', () => {
  const img = image(30, 20, random(1));
  assert.equal(resizeBicubicVips(img, 30, 20), img);
});

test('outputs too large to resize on the calling thread are resized in a worker, to the same bytes', async () => {
  const p: ProcessorConfig = {
    min_pixels: 3136, max_pixels: 12845056, patch_size: 14, merge_size: 2, temporal_patch_size: 2, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
  };
  const img = image(300, 200, random(7));
  const budget = { min: 1_000_000, max: 2_000_000 }; // an upscale to ~1 MP, above the calling thread's limit
  const r = await preprocessFrames([img], p, budget);
  assert.ok(r.width * r.height > 1 << 18);
  assert.ok(same(r.frames[0]!, await resizeBicubic(img, r.width, r.height)));
});

test('the committed kernel is the assembly of its committed source (scripts/build-wasm.ts)', async () => {
  assert.ok((await assemble(WAT.pathname)).equals(readFileSync(WASM)));
});
