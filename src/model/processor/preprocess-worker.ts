// Worker entry of the preprocessing pool: runs the resize and hands the resized frames back by transfer, with the
// buffers of the copies it was sent (the caller reuses them).
import { resizeFrames, type ResizeJob } from './patchify.js';
import type { ResizeAnswer } from './preprocess-pool.js';
import { serveTasks } from '../../util/worker-pool.js';

serveTasks((job: ResizeJob) => {
  const resized = resizeFrames(job);
  // A frame already at its size comes back as it was sent: its buffer is the result's, not one to reuse.
  const results = new Set(resized.map((f) => f.data.buffer as ArrayBuffer));
  const copied = [...new Set(job.frames.map((f) => f.data.buffer as ArrayBuffer))].filter((b) => !results.has(b));
  const value: ResizeAnswer = { resized, copied };
  return { value, transfer: [...results, ...copied] };
});
