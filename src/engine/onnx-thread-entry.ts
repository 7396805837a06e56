// The ONNX Runtime thread's entry (loaded through src/util/worker-boot.mjs): serves RuntimeCore's methods to the engine's thread.
import { serveTasks } from '../util/worker-pool.js';
import { RuntimeCore, type RuntimeMethod } from './runtime-core.js';

const core = new RuntimeCore();

/** The buffers of the typed arrays in a result, handed over rather than copied. */
function buffersOf(value: unknown, out = new Set<ArrayBuffer>(), depth = 0): Set<ArrayBuffer> {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer) out.add(value.buffer);
  } else if (value && typeof value === 'object' && depth < 4) {
    for (const v of Object.values(value)) buffersOf(v, out, depth + 1);
  }
  return out;
}

serveTasks(async (m: { method: RuntimeMethod; args: unknown[] }) => {
  const value = await (core[m.method] as (...a: unknown[]) => unknown)(...m.args);
  return { value, transfer: [...buffersOf(value)] };
});
