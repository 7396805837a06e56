import type { KvPool } from './kv-pool.js';
import type { Sequence } from './sequence.js';

export interface SchedulerOptions {
  /** Prompt/tool-result tokens prefilled per step, over all sequences (decode rows are extra). */
  maxNumBatchedTokens: number;
  /** Queued requests (without a slot) beyond which new ones are refused. */
  maxWaiting: number;
}

export interface StepPlan {
  /** Sequences feeding exactly their one pending token. */
  decode: Sequence[];
  /** Sequences feeding a chunk of their pending prompt / tool-result turn. */
  prefill: { seq: Sequence; tokens: number }[];
}

export class QueueFullError extends Error {
  constructor(readonly waiting: number) {
    super(`The server is at capacity (${waiting} requests queued). Retry later.`);
  }
}

/**
 * Iteration-level scheduling (continuous batching). Each step: every running sequence decodes one
 * token, and prefilling sequences (new prompts, resumed tool-result turns) get chunks within the
 * token budget, oldest first. Admission is FIFO by free KV slot; a slot reserves maxModelLen
 * positions, so admitted sequences are never preempted.
 */
export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly active: Sequence[] = [];

  constructor(private readonly pool: KvPool, private readonly opts: SchedulerOptions) {}

  add(seq: Sequence): void {
    // Refuse only a request that would have to wait for a slot while the queue is full.
    const wouldWait = this.waiting.length > 0 || this.pool.freeSlots < 1 + seq.siblings.length;
    if (wouldWait && this.waiting.length >= this.opts.maxWaiting) throw new QueueFullError(this.waiting.length);
    this.waiting.push(seq);
  }

  /** Gives free slots to waiting sequences in arrival order; an n > 1 group is admitted whole. */
  admit(): Sequence[] {
    const admitted: Sequence[] = [];
    while (this.waiting.length > 0 && this.pool.freeSlots >= 1 + this.waiting[0]!.siblings.length) {
      const seq = this.waiting.shift()!;
      for (const s of [seq, ...seq.siblings]) {
        s.slot = this.pool.allocate();
        s.status = s === seq ? 'prefilling' : 'forked';
        s.scheduledAt = performance.now();
        this.active.push(s);
        admitted.push(s);
      }
    }
    return admitted;
  }

  schedule(): StepPlan {
    const plan: StepPlan = { decode: [], prefill: [] };
    let budget = this.opts.maxNumBatchedTokens;
    for (const seq of this.active) {
      if (seq.status === 'running' && seq.remainingPending === 1) plan.decode.push(seq);
    }
    for (const seq of this.active) {
      if (budget <= 0) break;
      if (seq.status !== 'prefilling' && !(seq.status === 'running' && seq.remainingPending > 1)) continue;
      const tokens = Math.min(seq.remainingPending, budget);
      plan.prefill.push({ seq, tokens });
      budget -= tokens;
    }
    return plan;
  }

  remove(seq: Sequence): void {
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    const a = this.active.indexOf(seq);
    if (a >= 0) this.active.splice(a, 1);
    if (seq.slot !== undefined) {
      this.pool.release(seq.slot);
      seq.slot = undefined;
    }
  }

  counts(): { running: number; waiting: number; paused: number } {
    const paused = this.active.filter((s) => s.status === 'paused').length;
    const waiting = this.waiting.reduce((n, s) => n + 1 + s.siblings.length, 0);
    return { running: this.active.length - paused, waiting, paused };
  }
}
