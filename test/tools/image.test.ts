import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { cropRegion, imageRow, type RgbImage } from '../../src/tools/image.js';
import { resizeBicubicVips } from '../../src/model/processor/vips-resize.js';

function noise(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = ((i + seed) * 2654435761) >>> 24;
  return { data, width, height };
}

/** The oracle: libvips' extract_area through sharp. */
async function sharpCrop(img: RgbImage, left: number, top: number, right: number, bottom: number): Promise<Uint8Array> {
  const raw = { width: img.width, height: img.height, channels: 3 as const };
  return new Uint8Array(await sharp(img.data, { raw }).extract({ left, top, width: right - left, height: bottom - top }).raw().toBuffer());
}

test('cropRegion gives the bytes of sharp extract for boxes anywhere in the image, edges included', async () => {
  const img = noise(97, 61, 3);
  const boxes: [number, number, number, number][] = [
    [0, 0, 97, 61], [0, 0, 1, 1], [96, 60, 97, 61], [13, 7, 50, 59], [0, 30, 97, 31], [40, 0, 41, 61],
  ];
  for (let seed = 0; seed < 20; seed++) {
    const l = (seed * 37) % 90, t = (seed * 23) % 55;
    boxes.push([l, t, l + 1 + ((seed * 11) % (97 - l)), t + 1 + ((seed * 7) % (61 - t))]);
  }
  for (const [l, t, r, b] of boxes) {
    const out = cropRegion(img, l, t, r, b);
    assert.deepEqual([out.width, out.height], [r - l, b - t]);
    assert.deepEqual(out.data, await sharpCrop(img, l, t, r, b), `box ${[l, t, r, b]}`);
  }
});

test('cropRegion refuses a box outside the image or empty', () => {
  const img = noise(10, 8, 1);
  const boxes: [number, number, number, number][] = [[-1, 0, 5, 5], [0, 0, 11, 5], [0, 0, 5, 9], [5, 5, 5, 6], [3, 4, 2, 6], [0.5, 0, 5, 5]];
  for (const [l, t, r, b] of boxes) {
    assert.throws(() => cropRegion(img, l, t, r, b), RangeError, `box ${[l, t, r, b]}`);
  }
});

test('a crop of a crop is the composed box of the source; rows read in place equal the copied ones', async () => {
  const img = noise(120, 90, 5);
  const outer = cropRegion(img, 10, 20, 110, 85);
  const inner = cropRegion(outer, 7, 3, 61, 40);
  assert.deepEqual(inner.data, await sharpCrop(img, 17, 23, 71, 60));
  for (const crop of [outer, inner]) {
    const rows = Array.from({ length: crop.height }, (_, y) => [...imageRow(crop, y)]);
    assert.deepEqual(rows.flat(), [...crop.data]);
  }
  // A crop whose rows were copied out (its data read) crops the same.
  assert.deepEqual(cropRegion(outer, 7, 3, 61, 40).data, inner.data);
});

test('the resize reads a crop in place: the same bytes as resizing its copied pixels', () => {
  const img = noise(200, 150, 9);
  for (const [w, h] of [[56, 84], [140, 112], [28, 28]] as const) {
    const lazy = resizeBicubicVips(cropRegion(img, 31, 17, 187, 133), w, h);
    const copied = cropRegion(img, 31, 17, 187, 133);
    const plain: RgbImage = { data: copied.data.slice(), width: copied.width, height: copied.height };
    assert.deepEqual(lazy.data, resizeBicubicVips(plain, w, h).data, `${w}x${h}`);
  }
});
