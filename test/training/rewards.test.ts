import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grpoAdvantages, groupRewards, rapr, type Rollout } from '../../src/training/rewards.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);
const r = (correct: boolean, visualOps = 0, lastOpFailed = false): Rollout => ({ correct, visualOps, lastOpFailed });

test('8 image rollouts, 2 zoom once (one right, one wrong): RaPR 0.25, bonus 0.25*((0.3-0.25)/2)/0.25 = 0.025', () => {
  const group = [r(true, 1), r(false, 1), r(true), r(true), r(true), r(false), r(false), r(false)];
  assert.equal(rapr(group), 0.25);
  const parts = groupRewards(group, false);
  close(parts[0]!.curiosity, 0.025);
  close(parts[0]!.total, 1.025);
  close(parts[1]!.total, 0.025);
  assert.equal(parts[0]!.penalty, 0);
  assert.deepEqual(parts.slice(2).map((p) => p.total), [1, 1, 1, 0, 0, 0]);
  assert.ok(parts.slice(2).every((p) => p.curiosity === 0));
});

test('a group where every rollout zooms gets no curiosity bonus (RaPR 1 > H)', () => {
  const parts = groupRewards([r(true, 1), r(false, 1), r(true, 1), r(false, 1)], false);
  assert.deepEqual(parts.map((p) => p.curiosity), [0, 0, 0, 0]);
  assert.deepEqual(parts.map((p) => p.total), [1, 0, 1, 0]);
});

test('a video group uses the 1.5 divisor: RaPR 1/8 -> 0.25*((0.3-0.125)/1.5)/0.125', () => {
  const group = [r(true, 1), ...Array.from({ length: 7 }, () => r(false))];
  const parts = groupRewards(group, true);
  close(parts[0]!.curiosity, (0.25 * ((0.3 - 0.125) / 1.5)) / 0.125);
  close(parts[0]!.curiosity, 0.23333333333333334);
});

test('a rollout with 3 calls is penalised 0.05*min(1-3, 0) = -0.1', () => {
  const parts = groupRewards([r(true, 3), r(false), r(false), r(false)], false);
  close(parts[0]!.penalty, -0.1);
  // RaPR 0.25 -> bonus 0.025
  close(parts[0]!.total, 1 - 0.1 + 0.025);
});

test('a correct answer whose last operation failed and was never fixed gets r = 0', () => {
  const parts = groupRewards([r(true, 1, true), r(true), r(false), r(false)], false);
  assert.equal(parts[0]!.correctness, 0);
  close(parts[0]!.total, 0.025);
});

test('GRPO advantages normalise within the group; zero-variance groups are filtered', () => {
  const adv = grpoAdvantages([1, 0, 0, 1])!;
  adv.forEach((a, i) => close(a, [1, -1, -1, 1][i]! * (0.5 / (0.5 + 1e-6))));
  assert.equal(grpoAdvantages([1, 1, 1, 1]), undefined);
});
