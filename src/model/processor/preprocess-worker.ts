// Worker entry of the resize and patchify pools: runs a resize or a patchify and hands the result back by transfer, with the
// buffers of the frame copies it was sent (the caller reuses them).
import { resizeFrames } from './patchify.js';
import { patchifyAll, type PatchifyAnswer, type PreprocessTask, type ResizeAnswer } from './preprocess-pool.js';
import { serveTasks } from '../../util/worker-pool.js';

serveTasks((task: PreprocessTask) => {
  const sent = [...new Set((task.kind === 'resize' ? task.frames : task.inputs.flatMap((x) => x.frames)).map((f) => f.data.buffer as ArrayBuffer))];
  if (task.kind === 'patchify') {
    const value: PatchifyAnswer = { pixels: patchifyAll(task.pixels, task.inputs, task.processor), copied: sent };
    return { value, transfer: [task.pixels.buffer as ArrayBuffer, ...sent] };
  }
  const resized = resizeFrames(task);
  // A frame already at its size comes back as it was sent: its buffer is the result's, not one to reuse.
  const results = new Set(resized.map((f) => f.data.buffer as ArrayBuffer));
  const value: ResizeAnswer = { resized, copied: sent.filter((b) => !results.has(b)) };
  return { value, transfer: [...results, ...value.copied] };
});
