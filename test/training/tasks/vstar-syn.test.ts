import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vstarTask } from '../../../src/training/tasks/vstar-syn.js';
import { assertDeterministic, atModelResolution, choiceColourCounts, dominantChoice, inCrop } from './pixel-rules.js';

test('vstar-syn is deterministic per seed', async () => {
  const [a, b, c] = await Promise.all([vstarTask(3), vstarTask(3), vstarTask(4)]);
  assertDeterministic(a, b, c);
  assert.equal(a.choices!.length, 4);
  assert.match(a.answer, /^[ABCD]$/);
});

/** The box a trace (or a model that found the target) asks for: the target's tenths, rounded outwards. */
function tenthsBox([x1, y1, x2, y2]: number[], width: number, height: number): number[] {
  const axis = (a: number, b: number, size: number) => {
    const lo = Math.min(0.8, Math.floor((a / size) * 10) / 10);
    return [lo, Math.min(0.9, Math.max(lo + 0.1, Math.ceil((b / size) * 10) / 10))];
  };
  const [left, right] = axis(x1!, x2!, width);
  const [top, bottom] = axis(y1!, y2!, height);
  return [left!, top!, right!, bottom!];
}

test('the full image shows every choice colour alike; a crop around the frame shows only the answer', async () => {
  const N = 40;
  let lowRes = 0;
  let crop = 0;
  for (let seed = 0; seed < N; seed++) {
    const task = await vstarTask(seed);
    const full = await atModelResolution(task.image!, task.region!);
    assert.ok(choiceColourCounts(full, task.choices!).every((n) => n > 0), `seed ${seed}: a choice colour is missing from the image`);
    if (dominantChoice(full, task.choices!) === task.answer) lowRes++;
    const { width, height } = task.image!;
    const zoomed = await inCrop(task.image!, tenthsBox(task.region!, width, height), task.region!);
    const counts = choiceColourCounts(zoomed, task.choices!);
    const answer = 'ABCD'.indexOf(task.answer);
    assert.ok(counts.every((n, i) => (i === answer ? n > 100 : n === 0)), `seed ${seed}: crop colour counts ${counts}`);
    if (dominantChoice(zoomed, task.choices!) === task.answer) crop++;
  }
  // Chance is 25%.
  console.log(`most-pixels rule: model resolution ${lowRes}/${N}, crop ${crop}/${N}`);
  assert.ok(lowRes / N <= 0.45, `most-pixels rule on the full image: ${lowRes}/${N}`);
  assert.equal(crop, N);
});
