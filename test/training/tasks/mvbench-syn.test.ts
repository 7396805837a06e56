import assert from 'node:assert/strict';
import { test } from 'node:test';
import { videoFrameBudget } from '../../../src/engine/prompt.js';
import { presetConfig } from '../../../src/model/presets.js';
import { resizeBicubic, type RgbImage } from '../../../src/tools/image.js';
import { resizeTarget } from '../../../src/tools/image-processor.js';
import { executeToolCall } from '../../../src/tools/operations.js';
import { COLORS } from '../../../src/training/tasks/render.js';
import { mvbenchTask } from '../../../src/training/tasks/mvbench-syn.js';

const config = presetConfig('tiny', { image_token_id: 0, video_token_id: 0, vision_start_token_id: 0, vision_end_token_id: 0, eos_token_ids: [0], pad_token_id: 0 }, 10);

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

async function ruleAt(frame: RgbImage, region: number[], choices: string[], size: [number, number]): Promise<string> {
  const [w, h] = size;
  const small = await resizeBicubic(frame, w, h);
  const sx = w / frame.width;
  const sy = h / frame.height;
  return pixelRule(small, [region[0]! * sx, region[1]! * sy, region[2]! * sx, region[3]! * sy], choices);
}

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
    if ((await ruleAt(frame, task.region!, task.choices!, resizeTarget(frame, config.processor, videoFrameBudget(16, config)))) === task.answer) video++;
    const pickedFrames = await executeToolCall(
      { name: 'select_frames', arguments: { target_frames: [frameIndex] }, raw: '' },
      { images: [], videoFrames: task.frames, enabledTools: ['select_frames'], processor: config.processor },
    );
    assert.ok(pickedFrames.ok);
    if ((await ruleAt(pickedFrames.images[0]!, task.region!, task.choices!, pickedFrames.resultSize)) === task.answer) selected++;
  }
  console.log(`pixel rule: video input ${video}/${N}, selected frame ${selected}/${N}`);
  assert.ok(video <= 0.4 * N, `video input: ${video}/${N} (chance is 1/4)`);
  assert.ok(selected >= 0.85 * N, `selected frame: ${selected}/${N}`);
});
