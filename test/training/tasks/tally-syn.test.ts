import assert from 'node:assert/strict';
import { test } from 'node:test';
import { presetConfig } from '../../../src/model/presets.js';
import { resizeBicubic, type RgbImage } from '../../../src/tools/image.js';
import { resizeTarget } from '../../../src/tools/image-processor.js';
import { executeToolCall } from '../../../src/tools/operations.js';
import { COLORS } from '../../../src/training/tasks/render.js';
import { tallyTask } from '../../../src/training/tasks/tally-syn.js';

const processor = presetConfig('tiny', { image_token_id: 0, video_token_id: 0, vision_start_token_id: 0, vision_end_token_id: 0, eos_token_ids: [0], pad_token_id: 0 }, 10).processor;
const REFERENCES: [string, number[]][] = [...Object.entries(COLORS), ['white', [255, 255, 255]], ['background', [240, 239, 232]], ['tray edge', [85, 85, 85]]];

/** A simple pixel rule: 4-connected components of pixels nearest to the target colour inside the box. */
function countRule(img: RgbImage, box: number[], target: string): number {
  const [x1, y1, x2, y2] = box.map(Math.round) as [number, number, number, number];
  const w = x2 - x1;
  const h = y2 - y1;
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = ((y + y1) * img.width + x + x1) * 3;
      const d = REFERENCES.map(([, c]) => c.reduce((a, v, k) => a + (v - img.data[i + k]!) ** 2, 0));
      mask[y * w + x] = REFERENCES[d.indexOf(Math.min(...d))]![0] === target ? 1 : 0;
    }
  }
  let components = 0;
  const seen = new Uint8Array(w * h);
  for (let start = 0; start < w * h; start++) {
    if (!mask[start] || seen[start]) continue;
    components++;
    const stack = [start];
    seen[start] = 1;
    while (stack.length > 0) {
      const q = stack.pop()!;
      for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]] as const) {
        const nx = (q % w) + dx;
        const ny = Math.floor(q / w) + dy;
        const j = ny * w + nx;
        if (nx >= 0 && ny >= 0 && nx < w && ny < h && mask[j] && !seen[j]) {
          seen[j] = 1;
          stack.push(j);
        }
      }
    }
  }
  return components;
}

test('tally-syn is deterministic per seed', async () => {
  const [a, b, c] = await Promise.all([tallyTask(5), tallyTask(5), tallyTask(6)]);
  assert.ok(Buffer.from(a.image!.data).equals(Buffer.from(b.image!.data)));
  assert.deepEqual({ ...a, image: undefined }, { ...b, image: undefined });
  assert.ok(!Buffer.from(a.image!.data).equals(Buffer.from(c.image!.data)));
  assert.match(a.answer, /^\d+$/);
});

test('the count is not readable at the model input resolution by a pixel rule, but is from the ground-truth crop', async () => {
  const N = 30;
  let lowRes = 0;
  let crop = 0;
  for (let seed = 0; seed < N; seed++) {
    const task = await tallyTask(seed);
    const img = task.image!;
    const r = task.region!;
    const target = /How many (\w+) objects/.exec(task.question)![1]!;
    const [w, h] = resizeTarget(img, processor);
    const small = await resizeBicubic(img, w, h);
    const sx = w / img.width;
    const sy = h / img.height;
    if (countRule(small, [r[0] * sx, r[1] * sy, r[2] * sx, r[3] * sy], target) === Number(task.answer)) lowRes++;
    const zoom = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: r, target_image: 1 }, raw: '' }, { images: [img], enabledTools: ['crop_image_normalized'], processor });
    assert.ok(zoom.ok);
    const [cw, ch] = zoom.resultSize;
    const seen = await resizeBicubic(zoom.images[0]!, cw, ch);
    const [bx, by] = zoom.box!;
    const csx = cw / zoom.images[0]!.width;
    const csy = ch / zoom.images[0]!.height;
    if (countRule(seen, [(r[0] - bx) * csx, (r[1] - by) * csy, (r[2] - bx) * csx, (r[3] - by) * csy], target) === Number(task.answer)) crop++;
  }
  // Measured at the defaults: 3/30 from the full image, 30/30 from the crop.
  assert.ok(lowRes / N <= 0.3, `count rule on the full image: ${lowRes}/${N}`);
  assert.ok(crop / N >= 0.95, `count rule on the crop: ${crop}/${N}`);
});
