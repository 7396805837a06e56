import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIP_MEAN, CLIP_STD, type ProcessorConfig } from '../../src/model/config.js';
import type { RgbImage } from '../../src/tools/image.js';
import { errorTurnText, executeToolCall, type VisualContext } from '../../src/tools/operations.js';

const processor: ProcessorConfig = { min_pixels: 3136, max_pixels: 144 * 784, patch_size: 14, merge_size: 2, temporal_patch_size: 2, image_mean: CLIP_MEAN, image_std: CLIP_STD };

function image(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([x % 256, y % 256, (x + y) % 256], (y * width + x) * 3);
  return { data, width, height };
}

const ctx = (images: RgbImage[], videoFrames?: RgbImage[]): VisualContext => ({
  images, videoFrames, enabledTools: ['crop_image_normalized', 'select_frames'], processor,
});
const crop = (args: Record<string, unknown>, c: VisualContext) => executeToolCall({ name: 'crop_image_normalized', arguments: args, raw: '' }, c);
const select = (args: Record<string, unknown>, c: VisualContext) => executeToolCall({ name: 'select_frames', arguments: args, raw: '' }, c);

test('crop pads 0.1 on every side, clamps to the image and crops the full-resolution original', async () => {
  const big = image(1600, 1000);
  const r = await crop({ bbox_2d: [0.5, 0.5, 0.7, 0.6], target_image: 1 }, ctx([big]));
  assert.ok(r.ok);
  assert.deepEqual(r.box, [640, 400, 1280, 700]);
  const out = r.images[0]!;
  assert.equal(out.width, 640);
  assert.equal(out.height, 300);
  // Pixel (0,0) of the crop is pixel (640,400) of the original.
  assert.deepEqual([...out.data.slice(0, 3)], [640 % 256, 400 % 256, (1040) % 256]);
  assert.match(r.text, /^\nHere is the cropped image \(Image Size: \d+x\d+\):$/);
  assert.equal(r.text, `\nHere is the cropped image (Image Size: ${r.resultSize[0]}x${r.resultSize[1]}):`);

  const clamped = await crop({ bbox_2d: [0.0, 0.0, 0.05, 0.95], target_image: 1 }, ctx([big]));
  assert.ok(clamped.ok);
  assert.deepEqual(clamped.box, [0, 0, 240, 1000]);
});

test('absolute pixel boxes are divided by the target image size', async () => {
  const r = await crop({ bbox_2d: [800, 500, 1000, 600], target_image: 1 }, ctx([image(1600, 1000)]));
  assert.ok(r.ok);
  assert.deepEqual(r.box, [640, 400, 1160, 700]);
});

test('target_image is 1-based over the images so far: 2 is the second image, 3 is out of range', async () => {
  const c = ctx([image(1600, 1000), image(400, 300)]);
  const r = await crop({ bbox_2d: [0.2, 0.2, 0.8, 0.8], target_image: 2 }, c);
  assert.ok(r.ok);
  assert.deepEqual(r.box, [40, 30, 360, 270]);
  const bad = await crop({ bbox_2d: [0.2, 0.2, 0.8, 0.8], target_image: 3 }, c);
  assert.deepEqual(bad, { ok: false, tool: 'crop_image_normalized', error: 'Invalid target_image 3: valid images are 1 to 2.' });
});

test('invalid crops give the exact error texts', async () => {
  const c = ctx([image(1600, 1000)]);
  const err = async (args: Record<string, unknown>) => {
    const r = await crop(args, c);
    assert.equal(r.ok, false);
    return (r as { error: string }).error;
  };
  assert.equal(await err({ bbox_2d: [0.5, 0.5, 0.5, 0.5], target_image: 1 }), 'Invalid bbox_2d [0.5,0.5,0.5,0.5]: x1 must be less than x2 and y1 less than y2.');
  assert.equal(await err({ bbox_2d: [0.1, 0.2], target_image: 1 }), 'Invalid bbox_2d: expected [x1, y1, x2, y2] with 4 numbers, got [0.1,0.2].');
  assert.equal(await err({ bbox_2d: [2000, 1200, 2400, 1400], target_image: 1 }), 'The bounding box [2000,1200,2400,1400] is outside the image (size 1600x1000).');
  // 0.1 padding on a tiny image: 40x40 * 0.2 = 8 px, far under the 28 px minimum.
  const small = await crop({ bbox_2d: [0.4, 0.4, 0.41, 0.41], target_image: 1 }, ctx([image(40, 40)]));
  assert.deepEqual(small, { ok: false, tool: 'crop_image_normalized', error: 'Cropped image is too small: 8x8' });
  assert.equal(await err({ bbox_2d: [0.1, 0.1, 0.2, 0.2], target_image: 0 }), 'Invalid target_image 0: valid images are 1 to 1.');
});

test('select_frames: only on videos, 1-based, at most 8, with exact errors', async () => {
  const frames = Array.from({ length: 16 }, (_, i) => image(100 + i, 80));
  const ok = await select({ target_frames: [2, 5] }, ctx([], frames));
  assert.ok(ok.ok);
  assert.equal(ok.images[0]!.width, 101);
  assert.equal(ok.images[1]!.width, 104);
  assert.equal(ok.text, `\nHere are the selected frames (Frame Size: ${ok.resultSize[0]}x${ok.resultSize[1]}, Numbered 1 to 2):`);
  const onImage = await select({ target_frames: [1] }, ctx([image(100, 100)]));
  assert.deepEqual(onImage, { ok: false, tool: 'select_frames', error: 'You attempted to select frames from an **image**, but this operation is only designed for analyzing videos. Think again.' });
  const many = await select({ target_frames: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, ctx([], frames));
  assert.deepEqual(many, { ok: false, tool: 'select_frames', error: 'Too many frames: you selected 9, but at most 8 frames can be selected at once.' });
  const out = await select({ target_frames: [17] }, ctx([], frames));
  assert.deepEqual(out, { ok: false, tool: 'select_frames', error: 'Invalid frame index 17: the video has frames 1 to 16.' });
});

test('unknown tools and the error turn format', async () => {
  const r = await executeToolCall({ name: 'rotate', arguments: {}, raw: '' }, ctx([image(10, 10)]));
  assert.deepEqual(r, { ok: false, tool: 'rotate', error: 'Unknown tool "rotate". Available tools: crop_image_normalized, select_frames.' });
  assert.equal(errorTurnText('boom'), '\nExecution error:\nboom\n');
});

// Boundaries of DESIGN.md §4's rules, each pinned to the rule it checks.

test('§4 "a crop of 28 px or less is an error": exactly 28 px fails, 29 px passes', async () => {
  // A 100x100 image: 0.1 padding is 10 px a side, so a box of width b gives b + 20 px.
  const c = ctx([image(100, 100)]);
  const at28 = await crop({ bbox_2d: [40, 40, 48, 48], target_image: 1 }, c);
  assert.deepEqual(at28, { ok: false, tool: 'crop_image_normalized', error: 'Cropped image is too small: 28x28' });
  const at29 = await crop({ bbox_2d: [40, 40, 49, 49], target_image: 1 }, c);
  assert.ok(at29.ok);
  assert.deepEqual(at29.box, [30, 30, 59, 59]);
});

test('§4 crop coordinates round half to even (PIL\'s crop of a float box)', async () => {
  // On a 100x100 image, (0.165 - 0.1) * 100 is exactly 6.5 -> 6 and (0.185 - 0.1) * 100 exactly 8.5 -> 8
  // (Python's round; Math.round would give 7 and 9). The right and bottom clamp to 100.
  const r = await crop({ bbox_2d: [0.165, 0.185, 0.95, 0.95], target_image: 1 }, ctx([image(100, 100)]));
  assert.ok(r.ok);
  assert.deepEqual(r.box, [6, 8, 100, 100]);
  // (0.195 - 0.1) * 100 = 9.5 -> 10 and (0.115 - 0.1) * 100 = 1.5 -> 2: halves go to the even side both ways.
  const up = await crop({ bbox_2d: [0.195, 0.115, 0.95, 0.95], target_image: 1 }, ctx([image(100, 100)]));
  assert.ok(up.ok);
  assert.deepEqual(up.box, [10, 2, 100, 100]);
});

test('§4 "if all four values are < 1 they are fractions": [0, 0, 1, 1] has a 1, so it is read as pixels', async () => {
  const r = await crop({ bbox_2d: [0, 0, 1, 1], target_image: 1 }, ctx([image(400, 300)]));
  // Pixels [0,0,1,1] of a 400x300 image, padded by 40x30 px: a 41x31 crop at the corner.
  assert.ok(r.ok);
  assert.deepEqual(r.box, [0, 0, 41, 31]);
});

test('§4 "clamp to [0, 1]": a box at the right and bottom edges is clamped there', async () => {
  const r = await crop({ bbox_2d: [0.8, 0.85, 0.99, 0.999], target_image: 1 }, ctx([image(1000, 800)]));
  assert.ok(r.ok);
  assert.deepEqual(r.box, [700, 600, 1000, 800]);
  assert.equal(r.images[0]!.width, 300);
  assert.equal(r.images[0]!.height, 200);
});

test('§4 "target_image is 1-based over all images so far, crops included": a crop of an earlier crop', async () => {
  const original = image(1000, 1000);
  const first = await crop({ bbox_2d: [0.3, 0.3, 0.5, 0.5], target_image: 1 }, ctx([original]));
  assert.ok(first.ok);
  const images = [original, first.images[0]!];
  // Image 2 is the 400x400 crop at (200,200) of the original: its own (0.25..0.75) is original pixels 300..500 plus padding.
  const second = await crop({ bbox_2d: [0.35, 0.35, 0.65, 0.65], target_image: 2 }, ctx(images));
  assert.ok(second.ok);
  assert.deepEqual(second.box, [100, 100, 300, 300]);
  assert.deepEqual([...second.images[0]!.data.slice(0, 3)], [(200 + 100) % 256, (200 + 100) % 256, (600) % 256], 'the crop is of image 2, not of the original at the same box');
});

test('§4 select_frames boundaries: exactly 8 frames pass; index 0, an empty list and non-integers fail; numbering after images', async () => {
  const frames = Array.from({ length: 16 }, (_, i) => image(100 + i, 80));
  const eight = await select({ target_frames: [1, 2, 3, 4, 5, 6, 7, 8] }, ctx([], frames));
  assert.ok(eight.ok);
  assert.equal(eight.images.length, 8);
  const zero = await select({ target_frames: [0, 3] }, ctx([], frames));
  assert.deepEqual(zero, { ok: false, tool: 'select_frames', error: 'Invalid frame index 0: the video has frames 1 to 16.' });
  const empty = await select({ target_frames: [] }, ctx([], frames));
  assert.deepEqual(empty, { ok: false, tool: 'select_frames', error: 'Invalid target_frames: expected a list of 1 to 8 frame indices from 1 to 16, got [].' });
  const fractional = await select({ target_frames: [2.5] }, ctx([], frames));
  assert.deepEqual(fractional, { ok: false, tool: 'select_frames', error: 'Invalid target_frames: expected a list of 1 to 8 frame indices from 1 to 16, got [2.5].' });
  // With two images before the video, the selected frames become images 3 and 4.
  const afterImages = await select({ target_frames: [4, 9] }, ctx([image(50, 50), image(60, 60)], frames));
  assert.ok(afterImages.ok);
  assert.match(afterImages.text, /, Numbered 3 to 4\):$/);
});
