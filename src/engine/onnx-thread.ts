import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

/** The part of an InferenceSession the engine uses, on this thread or on the ONNX Runtime thread. */
export interface ModelSession {
  readonly inputNames: readonly string[];
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
  /** A run whose feeds view `lent` buffers (moved to the runtime and back, not copied); returns them with the outputs. */
  runLending(feeds: Record<string, ort.Tensor>, lent: ArrayBuffer[]): Promise<{ outputs: Record<string, ort.Tensor>; lent: ArrayBuffer[] }>;
  release(): Promise<void>;
}

/** Opens a model's sessions and, once they are released, closes what runs them. */
export interface SessionHost {
  open(source: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ModelSession>;
  close(): Promise<void>;
}

interface WireTensor {
  type: ort.Tensor.Type;
  data: ort.Tensor.DataType;
  dims: readonly number[];
}

/**
 * Sessions on a thread of their own (onnx-thread.mjs): onnxruntime-node's `run` is synchronous,
 * so on the event loop's thread a 3B prefill would stall HTTP, gRPC and streaming for seconds.
 * Inputs are copied to it, except lent buffers (the KV pool), which move there for the call and
 * back; outputs come back by transfer. One thread per model, ended by close().
 */
class ThreadHost implements SessionHost {
  private readonly worker = new Worker(new URL('./onnx-thread.mjs', import.meta.url));
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure?: Error;

  constructor() {
    this.worker.unref();
    this.worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string; lent?: ArrayBuffer[] }) => {
      const call = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.ok) call?.resolve(m.value);
      else call?.reject(Object.assign(new Error(m.error), { lent: m.lent }));
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const call of this.pending.values()) call.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the ONNX Runtime thread exited (code ${code})`)));
  }

  private call<T>(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    // Referenced while a call is out, so a process awaiting the model does not exit under it.
    this.worker.ref();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  async open(source: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ModelSession> {
    const session = this.nextId;
    const { inputNames } = await this.call<{ inputNames: string[] }>({ op: 'open', session, source, options });
    const runLending = async (feeds: Record<string, ort.Tensor>, lent: ArrayBuffer[]) => {
      const wire = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { type: t.type, data: t.data, dims: t.dims }]));
      const out = await this.call<{ outputs: Record<string, WireTensor>; lent: ArrayBuffer[] }>({ op: 'run', session, feeds: wire, lent }, lent);
      const outputs = Object.fromEntries(Object.entries(out.outputs).map(([k, t]) => [k, new ort.Tensor(t.type, t.data as Float32Array, t.dims)]));
      return { outputs, lent: out.lent };
    };
    return {
      inputNames,
      run: async (feeds) => (await runLending(feeds, [])).outputs,
      runLending,
      release: async () => {
        if (!this.failure) await this.call({ op: 'release', session });
      },
    };
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Sessions on the calling thread (PIXELREASONER_ONNX_THREAD=0): each run blocks the event loop for its duration. */
class LocalHost implements SessionHost {
  async open(source: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ModelSession> {
    const session = typeof source === 'string' ? await ort.InferenceSession.create(source, options) : await ort.InferenceSession.create(source, options);
    return {
      inputNames: session.inputNames,
      run: (feeds) => session.run(feeds),
      runLending: async (feeds, lent) => ({ outputs: await session.run(feeds), lent }),
      release: () => session.release(),
    };
  }

  async close(): Promise<void> {}
}

export function sessionHost(): SessionHost {
  return process.env.PIXELREASONER_ONNX_THREAD === '0' ? new LocalHost() : new ThreadHost();
}
