import { WorkerPool } from '../util/worker-pool.js';
import { RuntimeCore, type RuntimeMethod } from './runtime-core.js';

type Args<M extends RuntimeMethod> = Parameters<RuntimeCore[M]>;
type Result<M extends RuntimeMethod> = Awaited<ReturnType<RuntimeCore[M]>>;

/** Where a model's sessions and KV pools live: a thread of their own, or (for comparison) the calling thread. */
export interface Runtime {
  call<M extends RuntimeMethod>(method: M, args: Args<M>, transfer?: ArrayBuffer[]): Promise<Result<M>>;
  close(): Promise<void>;
}

/**
 * The ONNX Runtime thread. onnxruntime-node's `run` is synchronous on the calling thread, so on the
 * event loop's thread a 3B prefill would stall HTTP, gRPC and streaming for seconds. The sessions
 * and the KV pools live on this thread instead (a pool of one worker: calls run in the order
 * posted): a decoder call posts embeddings and positions and gets logits back. One thread per
 * model, ended by close(); if it crashes, calls fail (the sessions of a replacement thread would be
 * missing).
 */
class ThreadRuntime implements Runtime {
  // Every call is posted at once: the thread starts the next as soon as one ends, without a round trip here.
  private readonly thread = new WorkerPool(new URL('./onnx-thread-entry.ts', import.meta.url), 1, Infinity);

  call<M extends RuntimeMethod>(method: M, args: Args<M>, transfer: ArrayBuffer[] = []): Promise<Result<M>> {
    return this.thread.run<Result<M>>({ method, args }, transfer);
  }

  async close(): Promise<void> {
    await this.thread.close();
  }
}

/** PIXELREASONER_ONNX_THREAD=0: the same core on the calling thread; each run blocks the event loop for its duration. */
class LocalRuntime implements Runtime {
  private readonly core = new RuntimeCore();
  /** The last call posted: calls run one after another in the order posted, as on the thread (a chained decode row reads its slot's previous answer). */
  private tail: Promise<unknown> = Promise.resolve();

  call<M extends RuntimeMethod>(method: M, args: Args<M>): Promise<Result<M>> {
    const run = this.tail.then(() => (this.core[method] as (...a: unknown[]) => unknown)(...args)) as Promise<Result<M>>;
    this.tail = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {}
}

export function createRuntime(): Runtime {
  return process.env.PIXELREASONER_ONNX_THREAD === '0' ? new LocalRuntime() : new ThreadRuntime();
}
