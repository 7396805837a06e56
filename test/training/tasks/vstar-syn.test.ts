import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vstarTask } from '../../../src/training/tasks/vstar-syn.js';
import { assertDeterministic, atModelResolution, dottedPatchChoice, inGroundTruthCrop } from './pixel-rules.js';

test('vstar-syn is deterministic per seed', async () => {
  const [a, b, c] = await Promise.all([vstarTask(3), vstarTask(3), vstarTask(4)]);
  assertDeterministic(a, b, c);
  assert.equal(a.choices!.length, 4);
  assert.match(a.answer, /^[ABCD]$/);
});

test('which square is dotted is below the patch scale at the model input resolution, and readable patch by patch in the ground-truth crop', async () => {
  const N = 40;
  let lowRes = 0;
  let crop = 0;
  for (let seed = 0; seed < N; seed++) {
    const task = await vstarTask(seed);
    if (dottedPatchChoice(await atModelResolution(task.image!, task.region!), task.choices!) === task.answer) lowRes++;
    if (dottedPatchChoice(await inGroundTruthCrop(task.image!, task.region!), task.choices!) === task.answer) crop++;
  }
  // Chance is 25%. Measured at the default target size: 7/40 from the full image, 40/40 from the crop.
  console.log(`pixel rule: model resolution ${lowRes}/${N}, crop ${crop}/${N}`);
  assert.ok(lowRes / N <= 0.4, `pixel rule on the full image: ${lowRes}/${N}`);
  assert.ok(crop / N >= 0.95, `pixel rule on the crop: ${crop}/${N}`);
});
