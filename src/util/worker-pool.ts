import { parentPort, Worker, type TransferListItem } from 'node:worker_threads';

/**
 * A small pool of worker threads, one task at a time per worker (the preprocessing pool; with one
 * worker, the ONNX Runtime thread, whose tasks then run in order). Hand-written rather than a
 * library (none is a dependency): it needs lazy start, unref'd idle workers, and one failed task
 * per crash, which is about a hundred lines here.
 */

/** What a worker answers: the task's value, or its error's parts (rebuilt as an Error here). */
type Reply = { ok: true; value: unknown } | { ok: false; name: string; message: string; stack?: string };

interface Task {
  payload: unknown;
  transfer: TransferListItem[];
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  task?: Task;
}

/** Workers load `.ts` sources through this plain-JS entry, which registers tsx in the thread. */
const BOOT = new URL('./worker-boot.mjs', import.meta.url);

export class WorkerPool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Task[] = [];

  /** `entry`: a module that calls serveTasks(). */
  constructor(private readonly entry: URL, readonly size: number) {
    if (!(size >= 1)) throw new Error(`a worker pool needs at least 1 worker, got ${size}`);
  }

  /** Workers started and not exited. */
  get workers(): number {
    return this.slots.size;
  }

  run<T>(payload: unknown, transfer: TransferListItem[] = []): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ payload, transfer, resolve: resolve as (v: unknown) => void, reject });
      this.dispatch();
    });
  }

  /** Stops every worker; tasks in flight reject. */
  async close(): Promise<void> {
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = [...this.slots].find((s) => !s.task);
      if (!slot) {
        if (this.slots.size >= this.size) return;
        slot = this.spawn();
      }
      const task = this.queue.shift()!;
      slot.task = task;
      // A busy worker keeps the process alive like any pending I/O; an idle one never does.
      slot.worker.ref();
      slot.worker.postMessage(task.payload, task.transfer);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(BOOT, { workerData: { entry: this.entry.href } });
    worker.unref();
    const slot: Slot = { worker };
    this.slots.add(slot);
    const settle = (): Task | undefined => {
      const task = slot.task;
      slot.task = undefined;
      worker.unref();
      return task;
    };
    let failure: Error | undefined;
    worker.on('message', (reply: Reply) => {
      const task = settle();
      if (reply.ok) task?.resolve(reply.value);
      else task?.reject(Object.assign(new Error(reply.message), { name: reply.name, stack: reply.stack }));
      this.dispatch();
    });
    // An error thrown in a worker can arrive as a plain object (a DOMException loses its fields).
    const fail = (e: unknown) => {
      failure = e instanceof Error ? e : new Error(`worker failed: ${String((e as Error)?.message ?? e)}`);
    };
    worker.on('messageerror', (e) => {
      fail(e);
      void worker.terminate();
    });
    worker.on('error', fail);
    // A crashed worker fails only the task it held, and leaves the pool: the next task starts another.
    worker.on('exit', (code) => {
      this.slots.delete(slot);
      settle()?.reject(failure ?? new Error(`worker exited with code ${code}`));
      this.dispatch();
    });
    return slot;
  }
}

type Answer = { value: unknown; transfer?: TransferListItem[] };

/** Worker side: answers each message with handler's value (sent with its transfer list) or error; the handler may be async. */
export function serveTasks(handler: (payload: any) => Answer | Promise<Answer>): void {
  if (!parentPort) throw new Error('serveTasks runs in a worker thread');
  const port = parentPort;
  port.on('message', async (payload) => {
    try {
      const r = await handler(payload);
      // A value that cannot be cloned throws here, before anything is sent: answered as the task's error.
      port.postMessage({ ok: true, value: r.value } satisfies Reply, r.transfer ?? []);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      port.postMessage({ ok: false, name: err.name, message: err.message, stack: err.stack } satisfies Reply);
    }
  });
}
