import { parentPort, Worker, type TransferListItem } from 'node:worker_threads';

/**
 * A small pool of worker threads (the preprocessing pools; with one worker, the ONNX Runtime
 * thread). A worker runs its tasks one at a time, in the order posted; `perWorker` tasks may wait
 * posted at a worker, so it starts the next one without a round trip to this thread (the ONNX
 * Runtime thread takes every call at once). Hand-written rather than a library (none is a
 * dependency): it needs lazy start, unref'd idle workers, and only the crashed worker's tasks
 * failed, which is about a hundred lines here.
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
  /** Posted and not answered yet, oldest first (answers come in order). */
  tasks: Task[];
}

/** Workers load `.ts` sources through this plain-JS entry, which registers tsx in the thread. */
const BOOT = new URL('./worker-boot.mjs', import.meta.url);

export class WorkerPool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Task[] = [];

  /** `entry`: a module that calls serveTasks(). */
  constructor(private readonly entry: URL, readonly size: number, private readonly perWorker = 1) {
    if (!(size >= 1)) throw new Error(`a worker pool needs at least 1 worker, got ${size}`);
  }

  /** Workers started and not exited. */
  get workers(): number {
    return this.slots.size;
  }

  /** Runs a task on a worker; tasks start in the order they are run. */
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
      const slot = this.pick();
      if (!slot) return;
      const task = this.queue.shift()!;
      try {
        slot.worker.postMessage(task.payload, task.transfer);
      } catch (e) {
        // Not posted (a payload that cannot be cloned): only this task fails, and the answers stay in step with the tasks.
        task.reject(e instanceof Error ? e : new Error(String(e)));
        continue;
      }
      slot.tasks.push(task);
      // A busy worker keeps the process alive like any pending I/O; an idle one never does.
      slot.worker.ref();
    }
  }

  /** An idle worker, else a new one while the pool is under size, else the least busy worker with room. */
  private pick(): Slot | undefined {
    const idle = [...this.slots].find((s) => s.tasks.length === 0);
    if (idle) return idle;
    if (this.slots.size < this.size) return this.spawn();
    const least = [...this.slots].reduce((a, b) => (b.tasks.length < a.tasks.length ? b : a));
    return least.tasks.length < this.perWorker ? least : undefined;
  }

  private spawn(): Slot {
    const worker = new Worker(BOOT, { workerData: { entry: this.entry.href } });
    worker.unref();
    const slot: Slot = { worker, tasks: [] };
    this.slots.add(slot);
    const settle = (): Task | undefined => {
      const task = slot.tasks.shift();
      if (slot.tasks.length === 0) worker.unref();
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
    // A crashed worker fails only the tasks posted to it, and leaves the pool: the next task starts another.
    worker.on('exit', (code) => {
      this.slots.delete(slot);
      for (let task = settle(); task; task = settle()) task.reject(failure ?? new Error(`worker exited with code ${code}`));
      this.dispatch();
    });
    return slot;
  }
}

type Answer = { value: unknown; transfer?: TransferListItem[] };

/**
 * Worker side: answers each message with handler's value (sent with its transfer list) or error.
 * The handler may be async; tasks still run one at a time, in the order they were posted.
 */
export function serveTasks(handler: (payload: any) => Answer | Promise<Answer>): void {
  if (!parentPort) throw new Error('serveTasks runs in a worker thread');
  const port = parentPort;
  let previous = Promise.resolve();
  const answer = async (payload: unknown) => {
    try {
      const r = await handler(payload);
      // A value that cannot be cloned throws here, before anything is sent: answered as the task's error.
      port.postMessage({ ok: true, value: r.value } satisfies Reply, r.transfer ?? []);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      port.postMessage({ ok: false, name: err.name, message: err.message, stack: err.stack } satisfies Reply);
    }
  };
  port.on('message', (payload) => {
    previous = previous.then(() => answer(payload));
  });
}
