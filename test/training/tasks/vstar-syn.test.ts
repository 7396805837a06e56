import assert from 'node:assert/strict';
import { test } from 'node:test';
import { presetConfig } from '../../../src/model/presets.js';
import { resizeBicubic, type RgbImage } from '../../../src/tools/image.js';
import { resizeTarget } from '../../../src/tools/image-processor.js';
import { executeToolCall } from '../../../src/tools/operations.js';
import { COLORS } from '../../../src/training/tasks/render.js';
import { vstarTask } from '../../../src/training/tasks/vstar-syn.js';

const processor = presetConfig('tiny', { image_token_id: 0, video_token_id: 0, vision_start_token_id: 0, vision_end_token_id: 0, eos_token_ids: [0], pad_token_id: 0 }, 10).processor;

/** A simple pixel rule: mean colour of the central half of the target's box, nearest choice colour. */
function pixelRule(img: RgbImage, [x1, y1, x2, y2]: number[], choices: string[]): string {
  const cx = (x1! + x2!) / 2;
  const cy = (y1! + y2!) / 2;
  const hw = Math.max(0.5, (x2! - x1!) / 4);
  const hh = Math.max(0.5, (y2! - y1!) / 4);
  const sum = [0, 0, 0];
  let n = 0;
  for (let y = Math.floor(cy - hh); y <= Math.floor(cy + hh); y++) {
    for (let x = Math.floor(cx - hw); x <= Math.floor(cx + hw); x++) {
      for (let c = 0; c < 3; c++) sum[c]! += img.data[(y * img.width + x) * 3 + c]!;
      n++;
    }
  }
  const distances = choices.map((name) => COLORS[name]!.reduce((a, v, c) => a + (v - sum[c]! / n) ** 2, 0));
  return 'ABCD'[distances.indexOf(Math.min(...distances))]!;
}

test('vstar-syn is deterministic per seed', async () => {
  const [a, b, c] = await Promise.all([vstarTask(3), vstarTask(3), vstarTask(4)]);
  assert.ok(Buffer.from(a.image!.data).equals(Buffer.from(b.image!.data)));
  assert.deepEqual({ ...a, image: undefined }, { ...b, image: undefined });
  assert.ok(!Buffer.from(a.image!.data).equals(Buffer.from(c.image!.data)));
  assert.equal(a.choices!.length, 4);
  assert.match(a.answer, /^[ABCD]$/);
});

test('the target colour is not readable at the model input resolution by a pixel rule, but is from the ground-truth crop', async () => {
  const N = 40;
  let lowRes = 0;
  let crop = 0;
  for (let seed = 0; seed < N; seed++) {
    const task = await vstarTask(seed);
    const img = task.image!;
    const r = task.region!;
    const [w, h] = resizeTarget(img, processor);
    const small = await resizeBicubic(img, w, h);
    const sx = w / img.width;
    const sy = h / img.height;
    if (pixelRule(small, [r[0] * sx, r[1] * sy, r[2] * sx, r[3] * sy], task.choices!) === task.answer) lowRes++;
    const zoom = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: r, target_image: 1 }, raw: '' }, { images: [img], enabledTools: ['crop_image_normalized'], processor });
    assert.ok(zoom.ok);
    const [cw, ch] = zoom.resultSize;
    const seen = await resizeBicubic(zoom.images[0]!, cw, ch);
    const [bx, by] = zoom.box!;
    const csx = cw / zoom.images[0]!.width;
    const csy = ch / zoom.images[0]!.height;
    if (pixelRule(seen, [(r[0] - bx) * csx, (r[1] - by) * csy, (r[2] - bx) * csx, (r[3] - by) * csy], task.choices!) === task.answer) crop++;
  }
  // Chance is 25%. Measured at the default target size: 12/40 from the full image, 40/40 from the crop.
  assert.ok(lowRes / N <= 0.4, `pixel rule on the full image: ${lowRes}/${N}`);
  assert.ok(crop / N >= 0.95, `pixel rule on the crop: ${crop}/${N}`);
});
