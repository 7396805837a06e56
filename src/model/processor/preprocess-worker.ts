// Worker entry of the preprocessing pool: runs preprocessSync and hands the pixel values back by transfer.
import { preprocessSync, type PreprocessJob } from './patchify.js';
import { serveTasks } from '../../util/worker-pool.js';

serveTasks((job: PreprocessJob) => {
  const value = preprocessSync(job);
  return { value, transfer: [value.pixelValues.buffer] };
});
