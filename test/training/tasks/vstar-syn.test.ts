import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vstarTask } from '../../../src/training/tasks/vstar-syn.js';
import type { Task } from '../../../src/training/tasks/types.js';
import { CHOICE_LETTERS } from '../../../src/training/metrics.js';
import { synthesizeTrace } from '../../../src/training/traces.js';
import { parseLastToolCall } from '../../../src/tools/tool-call.js';
import { assertDeterministic, atModelResolution, choiceColourCounts, dominantChoice, inCrop } from './pixel-rules.js';

test('vstar-syn is deterministic per seed', async () => {
  const [a, b, c] = await Promise.all([vstarTask(3), vstarTask(3), vstarTask(4)]);
  assertDeterministic(a, b, c);
  assert.equal(a.choices!.length, 4);
  assert.match(a.answer, /^[ABCD]$/);
});

/** The box the zoom trace asks for (the target's tenths, rounded outwards), as the model would write it. */
function traceBox(task: Task): number[] {
  const call = parseLastToolCall(synthesizeTrace(task, 'zoom').steps[0]!.text);
  assert.ok(call?.ok);
  return call.call.arguments.bbox_2d as number[];
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
    const zoomed = await inCrop(task.image!, traceBox(task), task.region!);
    const counts = choiceColourCounts(zoomed, task.choices!);
    const answer = CHOICE_LETTERS.indexOf(task.answer);
    assert.ok(counts.every((n, i) => (i === answer ? n > 100 : n === 0)), `seed ${seed}: crop colour counts ${counts}`);
    if (dominantChoice(zoomed, task.choices!) === task.answer) crop++;
  }
  // Chance is 25%.
  console.log(`most-pixels rule: model resolution ${lowRes}/${N}, crop ${crop}/${N}`);
  assert.ok(lowRes / N <= 0.45, `most-pixels rule on the full image: ${lowRes}/${N}`);
  assert.equal(crop, N);
});
