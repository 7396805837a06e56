/**
 * Large buffers that travel to another thread and back, or are refilled on every call. A fresh
 * buffer per call pays its zero fill and page faults every time (about 7 ms for 2.4 MB here: 150 ms
 * of a thread for one benchmark's images). onnxruntime-node refuses SharedArrayBuffer views
 * ("Invalid argument"), so a buffer is transferred with its call, handed back with the answer, and
 * reused.
 */
export class ReusableBuffers {
  private readonly free: ArrayBuffer[] = [];

  /** Buffers over `keepBytes` are not kept (one huge image should not pin its size for good). */
  constructor(private readonly keepBytes = 64 * 2 ** 20, private readonly keepCount = 4) {}

  /** A buffer of at least `bytes` (contents undefined): the smallest free one that fits, else a new one. */
  take(bytes: number): ArrayBuffer {
    let best = -1;
    this.free.forEach((b, i) => {
      if (b.byteLength >= bytes && (best < 0 || b.byteLength < this.free[best]!.byteLength)) best = i;
    });
    // Sizes rounded up to 1 MiB so that inputs of similar sizes share buffers.
    return best >= 0 ? this.free.splice(best, 1)[0]! : new ArrayBuffer(Math.max(1, Math.ceil(bytes / 2 ** 20)) * 2 ** 20);
  }

  /** Returns a buffer once nothing uses it (a detached one, still out on another thread, is dropped). */
  give(buffer: ArrayBufferLike): void {
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0 || buffer.byteLength > this.keepBytes || this.free.includes(buffer)) return;
    this.free.push(buffer);
    // The largest are kept: a small input fits in them, not the other way round.
    if (this.free.length > this.keepCount) this.free.sort((a, b) => b.byteLength - a.byteLength).pop();
  }
}
