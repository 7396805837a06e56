// Worker entry of the preprocessing pool: runs the PIL resize and hands the resized frames back by transfer.
import { resizeFramesPil, type ResizeJob } from './patchify.js';
import { serveTasks } from '../../util/worker-pool.js';

serveTasks((job: ResizeJob) => {
  const value = resizeFramesPil(job);
  return { value, transfer: value.map((f) => f.data.buffer as ArrayBuffer) };
});
