// The ONNX Runtime thread: onnxruntime-node runs a session synchronously on the calling thread,
// so the server's event loop would stall for every model call. Sessions live here instead; the
// engine's thread posts feeds and receives outputs (plain JavaScript: no TypeScript loader needed).
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const sessions = new Map();

/** Outputs as plain { type, data, dims } with their buffers handed over, and the lent buffers given back. */
function post(id, outputs, lent) {
  const value = { outputs: {}, lent };
  const buffers = new Set(lent);
  for (const [name, t] of Object.entries(outputs)) {
    value.outputs[name] = { type: t.type, data: t.data, dims: t.dims };
    buffers.add(t.data.buffer);
  }
  try {
    parentPort.postMessage({ id, ok: true, value }, [...buffers]);
  } catch {
    parentPort.postMessage({ id, ok: true, value }, lent); // an output buffer that cannot be transferred is copied
  }
}

parentPort.on('message', async (m) => {
  try {
    if (m.op === 'open') {
      const session = await ort.InferenceSession.create(m.source, m.options);
      sessions.set(m.session, session);
      parentPort.postMessage({ id: m.id, ok: true, value: { inputNames: session.inputNames, outputNames: session.outputNames } });
    } else if (m.op === 'run') {
      const feeds = {};
      for (const [name, t] of Object.entries(m.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      post(m.id, await sessions.get(m.session).run(feeds), m.lent);
    } else if (m.op === 'release') {
      await sessions.get(m.session)?.release();
      sessions.delete(m.session);
      parentPort.postMessage({ id: m.id, ok: true });
    }
  } catch (e) {
    // Lent buffers go back even on failure, so the caller's pool stays usable.
    parentPort.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e), lent: m.lent }, m.lent ?? []);
  }
});
