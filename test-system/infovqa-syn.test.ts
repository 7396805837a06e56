import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cropRegion, type RgbImage } from '../src/tools/image.js';
import { resizeBicubicVips } from '../src/model/processor/vips-resize.js';
import { resizeTarget } from '../src/model/processor/image-processor.js';
import { executeToolCall } from '../src/tools/operations.js';
import { anls, mean } from '../src/training/metrics.js';
import { CODE_ALPHABET, INFOVQA_DEFAULTS, infovqaLayout, infovqaTask, TABLE_FONT } from '../src/training/tasks/infovqa-syn.js';
import { renderSvg } from '../src/training/tasks/render.js';
import { aroundRegion, assertDeterministic, pixelAt, processor } from '../test/training/tasks/pixel-rules.js';

const scaled = (img: RgbImage, s: number) => resizeBicubicVips(img, Math.max(1, Math.round(img.width * s)), Math.max(1, Math.round(img.height * s)));
const l2 = (a: RgbImage, b: RgbImage) => a.data.reduce((acc, v, i) => acc + (v - b.data[i]!) ** 2, 0);

/**
 * A template pixel rule (an OCR that knows the font and where each character sits): for each
 * character of the code, render every candidate alone in its cell, scale it like the observation
 * and pick the closest. Returns the code it reads at scale s.
 */
async function readCode(image: RgbImage, seed: number, s: number): Promise<string> {
  const layout = infovqaLayout(seed);
  const row = layout.rows[layout.asked]!;
  const fs = layout.fontSize;
  const box = { x: layout.codeX - 4, y: row.y - fs - 2, w: Math.round(row.code.length * 0.6 * fs) + 8, h: Math.round(fs * 1.5) + 4 };
  const observed = await scaled(cropRegion(image, box.x, box.y, box.x + box.w, box.y + box.h), s);
  let read = '';
  for (let k = 0; k < row.code.length; k++) {
    let best = '';
    let bestD = Infinity;
    for (const c of CODE_ALPHABET) {
      const code = `${' '.repeat(k)}${c}`.replaceAll(' ', '&#160;');
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${box.w}" height="${box.h}"><rect width="${box.w}" height="${box.h}" fill="#ffffff"/><text x="${layout.codeX - box.x}" y="${row.y - box.y}" font-family="${TABLE_FONT}" font-size="${fs}" fill="#000" xml:space="preserve">${code}</text></svg>`;
      const d = l2(await scaled(await renderSvg(svg), s), observed);
      if (d < bestD) [best, bestD] = [c, d];
    }
    read += best;
  }
  return read;
}

test('infovqa-syn is deterministic per seed, with a text answer scored by ANLS', async () => {
  const [a, b, c] = await Promise.all([infovqaTask(5), infovqaTask(5), infovqaTask(6)]);
  assertDeterministic(a, b, c);
  assert.equal(a.metric, 'anls');
  assert.match(a.answer, /^[A-Z2-9]{4}$/);
});

test('the code is not readable at the model input resolution by an ideal template rule, but is from the ground-truth crop', async () => {
  const N = 12;
  const low: number[] = [];
  const crop: number[] = [];
  for (let seed = 0; seed < N; seed++) {
    const task = await infovqaTask(seed);
    const img = task.image!;
    const [w] = resizeTarget(img, processor);
    low.push(anls(await readCode(img, seed, w / img.width), [task.answer]));
    const zoom = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: task.region!, target_image: 1 }, raw: '' }, { images: [img], enabledTools: ['crop_image_normalized'], processor });
    assert.ok(zoom.ok);
    crop.push(anls(await readCode(img, seed, zoom.resultSize[0] / zoom.images[0]!.width), [task.answer]));
  }
  console.log(`ANLS of the template rule: model resolution ${mean(low).toFixed(2)}, crop ${mean(crop).toFixed(2)}`);
  assert.ok(mean(low) <= 0.3, `model resolution ANLS ${mean(low)}`);
  assert.ok(mean(crop) >= 0.95, `crop ANLS ${mean(crop)}`);
});

test('option frame: a bold black frame around the key table, the table itself unchanged', async () => {
  for (let seed = 0; seed < 4; seed++) {
    const [plain, framed] = await Promise.all([infovqaTask(seed), infovqaTask(seed, { ...INFOVQA_DEFAULTS, frame: 8 })]);
    const [x1, y1, x2, y2] = framed.region!;
    const img = framed.image!;
    for (const [x, y] of aroundRegion(framed.region!, 4, 4)) {
      assert.deepEqual(pixelAt(img, x, y), [0, 0, 0], `seed ${seed}: frame at ${x},${y}`);
      assert.notDeepEqual(pixelAt(plain.image!, x, y), [0, 0, 0], `seed ${seed}: no frame by default`);
    }
    assert.equal(framed.answer, plain.answer);
    const mx = Math.round((x1 + x2) / 2);
    for (let y = y1 + 2; y < y2 - 1; y += 3) assert.deepEqual(pixelAt(img, mx, y), pixelAt(plain.image!, mx, y), `seed ${seed}: table pixel at ${mx},${y}`);
  }
});
