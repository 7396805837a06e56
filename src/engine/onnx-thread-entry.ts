// The ONNX Runtime thread's entry (loaded through src/util/worker-boot.mjs): serves RuntimeCore's methods to the engine's thread.
import { parentPort } from 'node:worker_threads';
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

parentPort!.on('message', async (m: { id: number; method: RuntimeMethod; args: unknown[] }) => {
  try {
    const value = await (core[m.method] as (...a: unknown[]) => unknown)(...m.args);
    try {
      parentPort!.postMessage({ id: m.id, ok: true, value }, [...buffersOf(value)]);
    } catch {
      parentPort!.postMessage({ id: m.id, ok: true, value }); // a buffer that cannot be transferred is copied
    }
  } catch (e) {
    parentPort!.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
});
