import { Worker } from 'node:worker_threads';
import { RuntimeCore, type RuntimeMethod } from './runtime-core.js';

type Args<M extends RuntimeMethod> = Parameters<RuntimeCore[M]>;
type Result<M extends RuntimeMethod> = Awaited<ReturnType<RuntimeCore[M]>>;

/** Where a model's sessions and KV pools live: a thread of their own, or (for comparison) the calling thread. */
export interface Runtime {
  call<M extends RuntimeMethod>(method: M, args: Args<M>, transfer?: ArrayBuffer[]): Promise<Result<M>>;
  close(): Promise<void>;
}

const BOOT = new URL('../util/worker-boot.mjs', import.meta.url);
const ENTRY = new URL('./onnx-thread-entry.ts', import.meta.url);

/**
 * The ONNX Runtime thread. onnxruntime-node's `run` is synchronous on the calling thread, so on the
 * event loop's thread a 3B prefill would stall HTTP, gRPC and streaming for seconds. The sessions
 * and the KV pools live on this thread instead: a decoder call posts embeddings and positions and
 * gets logits back. One thread per model, ended by close().
 */
class ThreadRuntime implements Runtime {
  private readonly worker = new Worker(BOOT, { workerData: { entry: ENTRY.href } });
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure?: Error;

  constructor() {
    this.worker.unref();
    this.worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const call = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.ok) call?.resolve(m.value);
      else call?.reject(new Error(m.error));
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const call of this.pending.values()) call.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the ONNX Runtime thread exited (code ${code})`)));
  }

  call<M extends RuntimeMethod>(method: M, args: Args<M>, transfer: ArrayBuffer[] = []): Promise<Result<M>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    // Referenced while a call is out, so a process awaiting the model does not exit under it.
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args }, transfer);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** PIXELREASONER_ONNX_THREAD=0: the same core on the calling thread; each run blocks the event loop for its duration. */
class LocalRuntime implements Runtime {
  private readonly core = new RuntimeCore();

  async call<M extends RuntimeMethod>(method: M, args: Args<M>): Promise<Result<M>> {
    return (await (this.core[method] as (...a: unknown[]) => unknown)(...args)) as Result<M>;
  }

  async close(): Promise<void> {}
}

export function createRuntime(): Runtime {
  return process.env.PIXELREASONER_ONNX_THREAD === '0' ? new LocalRuntime() : new ThreadRuntime();
}
