import assert from 'node:assert/strict';
import { test } from 'node:test';
import { videoFrameBudget } from '../../../src/engine/prompt.js';
import { executeToolCall } from '../../../src/tools/operations.js';
import { mvbenchTask } from '../../../src/training/tasks/mvbench-syn.js';
import { atModelResolution, meanColourChoice, processor, seenAt, tinyConfig } from './pixel-rules.js';

test('mvbench-syn is deterministic per seed: 16 frames, two consecutive ones holding the answer', async () => {
  const [a, b] = await Promise.all([mvbenchTask(2), mvbenchTask(2)]);
  assert.equal(a.frames!.length, 16);
  assert.ok(a.frames!.every((f, i) => Buffer.from(f.data).equals(Buffer.from(b.frames![i]!.data))));
  assert.deepEqual({ ...a, frames: undefined }, { ...b, frames: undefined });
  const [first, second] = a.answerFrames!;
  assert.equal(second, first! + 1);
  assert.ok(first! >= 1 && second! <= 16);
});

test('the target is a few pixels in the video input and V*-sized in the frame select_frames returns, where a pixel rule reads it', async () => {
  // A region-aware pixel rule reads a 4 px patch of colour too, so the video side is a size bound:
  // what a model must tell apart there is which of four 4 px squares the black frame encloses.
  const N = 30;
  let selected = 0;
  for (let seed = 0; seed < N; seed++) {
    const task = await mvbenchTask(seed);
    const frameIndex = task.answerFrames![0]!;
    const frame = task.frames![frameIndex - 1]!;
    const inVideo = await atModelResolution(frame, task.region!, videoFrameBudget(16, tinyConfig));
    assert.ok(inVideo.region[2] - inVideo.region[0] <= 5, `target is ${inVideo.region[2] - inVideo.region[0]} px wide in the video input`);
    const pickedFrames = await executeToolCall(
      { name: 'select_frames', arguments: { target_frames: [frameIndex] }, raw: '' },
      { images: [], videoFrames: task.frames, enabledTools: ['select_frames'], processor },
    );
    assert.ok(pickedFrames.ok);
    const inFrame = await seenAt(pickedFrames.images[0]!, pickedFrames.resultSize, task.region!);
    assert.ok(inFrame.region[2] - inFrame.region[0] >= 11, `target is ${inFrame.region[2] - inFrame.region[0]} px wide in the selected frame`);
    if (meanColourChoice(inFrame, task.choices!) === task.answer) selected++;
  }
  assert.ok(selected >= 0.85 * N, `selected frame: ${selected}/${N}`);
});

test('the two key frames are the darkest of the clip by far: finding the moment needs no resolution', async () => {
  const mean = (data: Uint8Array) => data.reduce((s, v) => s + v, 0) / data.length;
  for (let seed = 0; seed < 6; seed++) {
    const task = await mvbenchTask(seed);
    const means = task.frames!.map((f) => mean(f.data));
    const key = task.answerFrames!.map((f) => means[f - 1]!);
    const others = means.filter((_, i) => !task.answerFrames!.includes(i + 1));
    assert.ok(Math.max(...key) + 40 < Math.min(...others), `key frames ${key.map(Math.round)}, others from ${Math.round(Math.min(...others))}`);
  }
});
