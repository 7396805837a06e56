import assert from 'node:assert/strict';
import { test } from 'node:test';
import { videoFrameBudget } from '../../../src/engine/prompt.js';
import { executeToolCall } from '../../../src/tools/operations.js';
import { mvbenchTask } from '../../../src/training/tasks/mvbench-syn.js';
import { atModelResolution, meanColourChoice, processor, seenAt, tinyConfig } from './pixel-rules.js';

test('mvbench-syn is deterministic per seed: 16 frames, one holding the answer', async () => {
  const [a, b] = await Promise.all([mvbenchTask(2), mvbenchTask(2)]);
  assert.equal(a.frames!.length, 16);
  assert.ok(a.frames!.every((f, i) => Buffer.from(f.data).equals(Buffer.from(b.frames![i]!.data))));
  assert.deepEqual({ ...a, frames: undefined }, { ...b, frames: undefined });
  assert.equal(a.answerFrames!.length, 1);
});

test('the colour is not readable from the video input frames by a pixel rule, but is from the frame select_frames returns', async () => {
  const N = 30;
  let video = 0;
  let selected = 0;
  for (let seed = 0; seed < N; seed++) {
    const task = await mvbenchTask(seed);
    const frameIndex = task.answerFrames![0]!;
    const frame = task.frames![frameIndex - 1]!;
    if (meanColourChoice(await atModelResolution(frame, task.region!, videoFrameBudget(16, tinyConfig)), task.choices!) === task.answer) video++;
    const pickedFrames = await executeToolCall(
      { name: 'select_frames', arguments: { target_frames: [frameIndex] }, raw: '' },
      { images: [], videoFrames: task.frames, enabledTools: ['select_frames'], processor },
    );
    assert.ok(pickedFrames.ok);
    if (meanColourChoice(await seenAt(pickedFrames.images[0]!, pickedFrames.resultSize, task.region!), task.choices!) === task.answer) selected++;
  }
  console.log(`pixel rule: video input ${video}/${N}, selected frame ${selected}/${N}`);
  assert.ok(video <= 0.4 * N, `video input: ${video}/${N} (chance is 1/4)`);
  assert.ok(selected >= 0.85 * N, `selected frame: ${selected}/${N}`);
});
