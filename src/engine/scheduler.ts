import type { EngineConfig } from './engine-config.js';
import type { TokenOutcome } from './output-processor.js';
import type { Chunk } from './model-runner.js';
import { isPlainGreedy } from './sampler.js';
import type { Sequence } from './sequence.js';
import type { FinishReason } from './types.js';

export class QueueFullError extends Error {
  constructor(readonly waiting: number) {
    super(`The server is at capacity (${waiting} requests queued). Retry later.`);
  }
}

/** More samples (n) than the engine has sequence slots: the group is admitted whole, so it could never start. */
export class TooManySamplesError extends Error {
  constructor(readonly n: number, readonly slots: number) {
    super(`n = ${n} samples need ${n} sequence slots at once; this server has ${slots} (--max-num-seqs).`);
  }
}

/**
 * Tokens each prefilling sequence (oldest first, `left` tokens still to feed) is given this step.
 * Pending turns are fed whole while they fit the budget; only a turn longer than a whole budget
 * is cut, and only when it is the oldest left. The prefill rows of a step share a decoder call
 * padded to the longest (model-runner.ts): a remainder cut to fill the budget would pad to its
 * neighbour or take a call of its own, and on a small model a call's fixed cost is a few
 * milliseconds. So a step may leave part of its budget unused.
 */
export function prefillShares(left: number[], budget: number): number[] {
  let first = true;
  return left.map((l) => {
    const tokens = l <= budget ? l : first ? budget : 0;
    if (tokens > 0) first = false;
    budget -= tokens;
    return tokens;
  });
}

/**
 * Owns the sequences' lifecycle: admission (FIFO by free KV slot), each step's plan (continuous
 * batching), and every status change and finish decision. Each step, every running sequence
 * decodes one token and prefilling sequences (new prompts, resumed tool-result turns) are fed
 * within the token budget, oldest first (prefillShares). A slot reserves maxModelLen positions, so admitted
 * sequences are never preempted.
 */
export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly active: Sequence[] = [];
  private readonly freeSlots: number[];

  constructor(private readonly config: EngineConfig) {
    this.freeSlots = Array.from({ length: config.maxNumSeqs }, (_, i) => i);
  }

  get slots(): { total: number; free: number } {
    return { total: this.config.maxNumSeqs, free: this.freeSlots.length };
  }

  /**
   * Queues a request's first sequence (its samples wait with it). One whose pending tokens already
   * leave no room to generate (a client call's result turn filled the context) is not queued: it and
   * its samples finish as length, returned for the caller to complete.
   */
  add(seq: Sequence): Sequence[] {
    const group = 1 + seq.siblings.length;
    if (group > this.config.maxNumSeqs) throw new TooManySamplesError(group, this.config.maxNumSeqs);
    if (this.noRoom(seq)) {
      const samples = [seq, ...seq.siblings.splice(0)];
      for (const s of samples) {
        if (s !== seq) s.copyToolStateFrom(seq);
        this.finish(s, 'length');
      }
      return samples;
    }
    // Refuse only a request that would have to wait for a slot while the queue is full.
    const wouldWait = this.waiting.length > 0 || this.freeSlots.length < group;
    if (wouldWait && this.waiting.length >= this.config.maxWaiting) throw new QueueFullError(this.waiting.length);
    this.waiting.push(seq);
    return [];
  }

  /** Pending tokens that fill the context: nothing could be generated after them. */
  private noRoom(seq: Sequence): boolean {
    return seq.totalTokens >= this.config.maxModelLen;
  }

  /** The running sequences: each feeds its one sampled token this step. */
  decodeBatch(): Sequence[] {
    return this.active.filter((seq) => seq.status === 'running' && seq.remainingPending === 1);
  }

  /**
   * This step's decode rows, and whether they may be posted before the decode still in flight is
   * accepted: when the runner `chains` and every running sequence is plain greedy (vLLM's async
   * scheduling). A sequence whose row is still in flight then decodes again, unless that row's
   * token will be its last by length (max tokens, or the context full).
   */
  decodePlan(chains: boolean, inFlight: (seq: Sequence) => boolean): { seqs: Sequence[]; pipelined: boolean } {
    const running = this.decodeBatch();
    if (!chains || !running.every((seq) => isPlainGreedy(seq.request.sampling))) return { seqs: running, pipelined: false };
    const mayContinue = (seq: Sequence) => seq.generated.length + 1 < seq.request.maxTokens && seq.totalTokens + 1 < this.config.maxModelLen;
    return { seqs: running.filter((seq) => !inFlight(seq) || mayContinue(seq)), pipelined: true };
  }

  /** Whether this step prefills: a sequence has pending tokens to feed, or the next waiting group fits the free slots. */
  prefillsThisStep(): boolean {
    return this.admitsNext() || this.active.some((seq) => this.feeds(seq));
  }

  /** A sequence with a prompt or result turn to prefill (a running one feeds only its sampled token, by decode). */
  private feeds(seq: Sequence): boolean {
    return seq.status === 'prefilling' || (seq.status === 'running' && seq.remainingPending > 1);
  }

  /** Whether the free slots take the next waiting group (an n > 1 group is admitted whole). */
  private admitsNext(): boolean {
    return this.waiting.length > 0 && this.freeSlots.length >= 1 + this.waiting[0]!.siblings.length;
  }

  /** This step's prefill: chunks of the pending prompts and tool-result turns, within the token budget (prefillShares). */
  prefillChunks(): Chunk[] {
    return this.chunksAfter(new Map());
  }

  /** The prefilling sequences the step after `planned` would feed. */
  upNext(planned: Chunk[]): Sequence[] {
    return this.chunksAfter(new Map(planned.map((c) => [c.seq, c.tokens]))).map((c) => c.seq);
  }

  /** One budget's chunks of what the prefilling sequences still have to feed beyond the `planned` tokens. */
  private chunksAfter(planned: Map<Sequence, number>): Chunk[] {
    const left = (seq: Sequence) => seq.remainingPending - (planned.get(seq) ?? 0);
    const candidates = this.active.filter((seq) => this.feeds(seq) && left(seq) > 0);
    const shares = prefillShares(candidates.map(left), this.config.maxNumBatchedTokens);
    return candidates.map((seq, i) => ({ seq, tokens: shares[i]! })).filter((c) => c.tokens > 0);
  }

  /**
   * Gives free slots to waiting sequences in arrival order, lowest slot first so active slots stay
   * packed at the front (a decode batch spans slots [0, max]); an n > 1 group is admitted whole.
   * Returns the first sequence of each admitted group.
   */
  admit(): Sequence[] {
    const admitted: Sequence[] = [];
    while (this.admitsNext()) {
      const seq = this.waiting.shift()!;
      this.freeSlots.sort((a, b) => a - b);
      for (const s of [seq, ...seq.siblings]) {
        s.slot = this.freeSlots.shift();
        s.status = s === seq ? 'prefilling' : 'forked';
        s.scheduledAt = performance.now();
        this.active.push(s);
      }
      this.config.metrics?.queueTime.observe((seq.scheduledAt! - seq.arrivedAt) / 1000);
      admitted.push(seq);
    }
    return admitted;
  }

  /** A prompt is in the cache: the sequence runs, and its forked samples start from it (returned to be given its cache). */
  promptDone(seq: Sequence): Sequence[] {
    seq.status = 'running';
    const forked = seq.siblings.splice(0).filter((s) => !s.finishReason);
    for (const s of forked) {
      s.copyToolStateFrom(seq);
      s.adoptPromptOf(seq);
      s.status = 'running';
    }
    return forked;
  }

  /** Waits, holding its slot, for a tool result that is still being prepared (no batch row meanwhile). */
  pause(seq: Sequence): void {
    seq.status = 'paused';
    seq.runEpoch++;
  }

  /** The finish rules for a sampled token; 'pause' when a tool call is to run. */
  afterToken(seq: Sequence, outcome: TokenOutcome): FinishReason | 'pause' | undefined {
    const req = seq.request;
    if (outcome === 'eos' || outcome === 'stop_string') return this.finish(seq, 'stop');
    // Before the tool: a call on the last token allowed is not run, since nothing could be generated after its result.
    if (seq.generated.length >= req.maxTokens || seq.totalTokens >= this.config.maxModelLen) return this.finish(seq, 'length');
    if (outcome === 'tool_call') return seq.steps.length >= req.maxToolCalls ? this.finish(seq, 'tool_limit') : 'pause';
    return undefined;
  }

  /** After its tool ran: the sequence prefills the result turn, or finishes when the turn leaves no room. */
  resume(seq: Sequence): FinishReason | undefined {
    if (this.noRoom(seq)) return this.finish(seq, 'length');
    seq.status = 'prefilling';
    return undefined;
  }

  /** Sequences whose caller gave up, finished as aborted (a queued group goes with its first sample). */
  reapAborted(): Sequence[] {
    const queued = this.waiting.filter((s) => s.hooks.signal?.aborted).flatMap((s) => [s, ...s.siblings]);
    const aborted = [...this.active.filter((s) => s.hooks.signal?.aborted), ...queued].filter((s) => !s.finishReason);
    for (const s of aborted) this.finish(s, 'abort');
    return aborted;
  }

  /** Finishes a sequence and frees its slot. */
  finish(seq: Sequence, reason: FinishReason): FinishReason {
    seq.status = 'finished';
    seq.runEpoch++;
    seq.finishReason = reason;
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    const a = this.active.indexOf(seq);
    if (a >= 0) this.active.splice(a, 1);
    if (seq.slot !== undefined) {
      this.freeSlots.push(seq.slot);
      seq.slot = undefined;
    }
    return reason;
  }

  get idle(): boolean {
    return this.active.length === 0 && this.waiting.length === 0;
  }

  counts(): { running: number; waiting: number; paused: number } {
    const paused = this.active.filter((s) => s.status === 'paused').length;
    const waiting = this.waiting.reduce((n, s) => n + 1 + s.siblings.length, 0);
    return { running: this.active.length - paused, waiting, paused };
  }

  /** Fraction of the KV positions (slots x maxModelLen) in use (vLLM's kv_cache_usage_perc). */
  kvUsage(): number {
    return this.active.reduce((n, s) => n + s.cacheLength, 0) / (this.config.maxNumSeqs * this.config.maxModelLen);
  }
}
