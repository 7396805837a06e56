import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COLORS } from '../../../src/training/tasks/render.js';
import { TALLY_COLORS, TALLY_DEFAULTS, tallyTask } from '../../../src/training/tasks/tally-syn.js';
import { aroundRegion, assertDeterministic, atModelResolution, choiceColourCounts, inGroundTruthCrop, pixelAt, type Seen } from './pixel-rules.js';
const REFERENCES: [string, number[]][] = [...Object.entries(COLORS), ['white', [255, 255, 255]], ['background', [240, 239, 232]], ['tray edge', [85, 85, 85]]];

/** A simple pixel rule: 4-connected components of pixels nearest to the target colour inside the box. */
function countRule({ image: img, region }: Seen, target: string): number {
  const [x1, y1, x2, y2] = region.map(Math.round) as [number, number, number, number];
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
  assertDeterministic(a, b, c);
  assert.match(a.answer, /^\d+$/);
});

test('the count is not readable at the model input resolution by a pixel rule, but is from the ground-truth crop', async () => {
  const N = 30;
  let lowRes = 0;
  let crop = 0;
  for (let seed = 0; seed < N; seed++) {
    const task = await tallyTask(seed);
    const target = /How many (\w+) objects/.exec(task.question)![1]!;
    if (countRule(await atModelResolution(task.image!, task.region!), target) === Number(task.answer)) lowRes++;
    if (countRule(await inGroundTruthCrop(task.image!, task.region!), target) === Number(task.answer)) crop++;
  }
  // Measured at the defaults: 3/30 from the full image, 30/30 from the crop.
  console.log(`count rule: model resolution ${lowRes}/${N}, crop ${crop}/${N}`);
  assert.ok(lowRes / N <= 0.3, `count rule on the full image: ${lowRes}/${N}`);
  assert.ok(crop / N >= 0.95, `count rule on the crop: ${crop}/${N}`);
});

test('options: a bold black frame around the tray, and a tray of one colour', async () => {
  const opts = { ...TALLY_DEFAULTS, objectSize: 44, gap: 10, cols: 3, rows: 2, frame: 10, palette: 1 };
  for (let seed = 0; seed < 5; seed++) {
    const task = await tallyTask(seed, opts);
    const img = task.image!;
    for (const [x, y] of aroundRegion(task.region!, 5, 4)) assert.deepEqual(pixelAt(img, x, y), [0, 0, 0], `seed ${seed}: frame at ${x},${y}`);
    const target = /How many (\w+) objects/.exec(task.question)![1]!;
    assert.equal(countRule({ image: img, region: task.region! }, target), Number(task.answer), `seed ${seed}: count`);
    const others = TALLY_COLORS.filter((c) => c !== target);
    assert.deepEqual(choiceColourCounts({ image: img, region: task.region! }, others), [0, 0, 0], `seed ${seed}: only ${target} in the image`);
  }
});
