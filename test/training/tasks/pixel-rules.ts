import assert from 'node:assert/strict';
import { presetConfig } from '../../../src/model/presets.js';
import type { RgbImage } from '../../../src/tools/image.js';
import { resizeBicubicVips } from '../../../src/model/processor/vips-resize.js';
import { resizeTarget } from '../../../src/model/processor/image-processor.js';
import { executeToolCall } from '../../../src/tools/operations.js';
import { CHOICE_LETTERS } from '../../../src/training/metrics.js';
import { COLORS } from '../../../src/training/tasks/render.js';

/** The default (tiny) model's config; its image processor sets the resolutions the pixel rules look at. */
export const tinyConfig = presetConfig('tiny', { image_token_id: 0, video_token_id: 0, vision_start_token_id: 0, vision_end_token_id: 0, eos_token_ids: [0], pad_token_id: 0 }, 10);
export const processor = tinyConfig.processor;

type Box = [number, number, number, number];

/** A picture as the model sees it, with the answer region mapped into it. */
export interface Seen {
  image: RgbImage;
  region: Box;
}

/** `img` resized to `size` (bicubic, as the processor does), `region` mapped from `origin` (top-left in img). */
export async function seenAt(img: RgbImage, size: [number, number], region: number[], origin: [number, number] = [0, 0]): Promise<Seen> {
  const [w, h] = size;
  const sx = w / img.width;
  const sy = h / img.height;
  const [ox, oy] = origin;
  return { image: resizeBicubicVips(img, w, h), region: [(region[0]! - ox) * sx, (region[1]! - oy) * sy, (region[2]! - ox) * sx, (region[3]! - oy) * sy] };
}

/** The image at the model's input resolution (a video frame: with the video's per-frame budget). */
export function atModelResolution(img: RgbImage, region: number[], budget?: { min: number; max: number }): Promise<Seen> {
  return seenAt(img, resizeTarget(img, processor, budget), region);
}

/** The crop of `bbox` (pixels, or fractions as a model writes them), as the real crop tool returns it and the model sees it. */
export async function inCrop(img: RgbImage, bbox: number[], region: number[]): Promise<Seen> {
  const zoom = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: bbox, target_image: 1 }, raw: '' }, { images: [img], enabledTools: ['crop_image_normalized'], processor });
  assert.ok(zoom.ok);
  return seenAt(zoom.images[0]!, zoom.resultSize, region, [zoom.box![0], zoom.box![1]]);
}

/** The ground-truth crop. */
export function inGroundTruthCrop(img: RgbImage, region: number[]): Promise<Seen> {
  return inCrop(img, region, region);
}

/** A simple pixel rule: mean colour of the central half of the target's box, nearest choice colour. */
export function meanColourChoice({ image: img, region: [x1, y1, x2, y2] }: Seen, choices: string[]): string {
  const cx = (x1 + x2) / 2;
  const cy = (y1 + y2) / 2;
  const hw = Math.max(0.5, (x2 - x1) / 4);
  const hh = Math.max(0.5, (y2 - y1) / 4);
  const sum = [0, 0, 0];
  let n = 0;
  for (let y = Math.floor(cy - hh); y <= Math.floor(cy + hh); y++) {
    for (let x = Math.floor(cx - hw); x <= Math.floor(cx + hw); x++) {
      for (let c = 0; c < 3; c++) sum[c]! += img.data[(y * img.width + x) * 3 + c]!;
      n++;
    }
  }
  const distances = choices.map((name) => COLORS[name]!.reduce((a, v, c) => a + (v - sum[c]! / n) ** 2, 0));
  return CHOICE_LETTERS[distances.indexOf(Math.min(...distances))]!;
}

/** The RGB value at (x, y). */
export function pixelAt(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [...img.data.subarray(i, i + 3)];
}

/** The midpoints of a region's four sides, moved outwards: `before` px past its left and top, `after` px past its right and bottom. */
export function aroundRegion([x1, y1, x2, y2]: readonly number[], before: number, after: number): [number, number][] {
  const mx = Math.round((x1! + x2!) / 2);
  const my = Math.round((y1! + y2!) / 2);
  return [[x1! - before, my], [x2! + after, my], [mx, y1! - before], [mx, y2! + after]];
}

/** Same seed, same pixels and fields; another seed, other pixels. */
export function assertDeterministic(a: { image?: RgbImage }, b: { image?: RgbImage }, c: { image?: RgbImage }): void {
  assert.ok(Buffer.from(a.image!.data).equals(Buffer.from(b.image!.data)));
  assert.deepEqual({ ...a, image: undefined }, { ...b, image: undefined });
  assert.ok(!Buffer.from(a.image!.data).equals(Buffer.from(c.image!.data)));
}

/** How many pixels lie within `tolerance` (RGB distance) of each choice colour, in choice order. */
export function choiceColourCounts({ image: img }: Seen, choices: string[], tolerance = 40): number[] {
  const counts = choices.map(() => 0);
  for (let p = 0; p < img.data.length; p += 3) {
    choices.forEach((name, i) => {
      const [r, g, b] = COLORS[name]!;
      if (Math.hypot(img.data[p]! - r, img.data[p + 1]! - g, img.data[p + 2]! - b) <= tolerance) counts[i]!++;
    });
  }
  return counts;
}

/** The letter of the choice colour with the most pixels: reads a picture that shows one choice colour. */
export function dominantChoice(seen: Seen, choices: string[]): string {
  const counts = choiceColourCounts(seen, choices);
  return CHOICE_LETTERS[counts.indexOf(Math.max(...counts))]!;
}
