import { appendChunk, type BuiltPrompt, type PromptChunk } from './prompt.js';
import type { ProcessorConfig } from '../model/config.js';
import { RopePositions } from '../model/processor/rope-index.js';
import type { VisualContext } from '../tools/operations.js';
import type { FinishReason, GenerateOptions, GenerationRequest, GenerationResult, ToolStep, TokenLogprob, Trajectory } from './types.js';
import { Rng } from '../util/random.js';

/**
 * waiting (no slot) -> prefilling -> running -> paused (tool) -> prefilling (result turn) -> running ... -> finished.
 * A sequence holds its KV slot from admission to finish, paused or not; paused ones take no batch row.
 * `forked`: an n > 1 sibling waiting for the first sample's prompt prefill, whose cache it copies.
 */
export type SequenceStatus = 'waiting' | 'forked' | 'prefilling' | 'running' | 'paused' | 'finished';

/** Tokens waiting to be fed, with how many are already in the cache and their visual features once encoded. */
export interface PendingChunk extends PromptChunk {
  fed: number;
  features?: Float32Array[];
}

export interface SequenceHooks extends GenerateOptions {
  resolve: (r: GenerationResult) => void;
  reject: (e: unknown) => void;
}

/** One request's generation state: its KV slot, what is still to be fed, and what it produced. */
export class Sequence {
  status: SequenceStatus = 'waiting';
  slot?: number;
  /** Positions already in the KV cache. */
  cacheLength = 0;
  /** Counts the times the sequence stopped running (paused, finished): a decode row posted in an earlier epoch is stale. */
  runEpoch = 0;
  pending: PendingChunk;
  readonly promptTokenIds: number[];
  /** Prompt tokens whose KV came from the prefix cache. */
  cachedPromptTokens = 0;
  /** Prompt-side tokens fed so far (initial prompt plus inserted tool-result turns). */
  promptTokens: number;
  readonly generated: number[] = [];
  readonly generatedCounts = new Map<number, number>();
  /** Token ids of each assistant turn. */
  readonly turnIds: number[][] = [[]];
  readonly steps: ToolStep[] = [];
  readonly logprobs: TokenLogprob[] = [];
  finishReason?: FinishReason;
  /** Characters of the current turn already emitted as text deltas. */
  emittedChars = 0;
  /** Incremental detokenization of the current turn (vLLM's prefix/read offsets). */
  turnText = '';
  prefixOffset = 0;
  readOffset = 0;
  readonly rng: Rng;
  /** n > 1: the siblings that copy this sequence's prompt cache instead of prefilling it. */
  siblings: Sequence[] = [];
  /** The full token stream, kept only when the caller asked for it. */
  trajectory?: Trajectory;
  scheduledAt?: number;
  firstTokenAt?: number;
  lastTokenAt?: number;

  constructor(
    readonly id: string,
    readonly request: GenerationRequest,
    prompt: PromptChunk,
    readonly rope: RopePositions,
    readonly visual: VisualContext,
    readonly hooks: SequenceHooks,
    /** When the request reached the engine (before its intake): TTFT, queue time and end-to-end latency count from here. */
    readonly arrivedAt = performance.now(),
  ) {
    this.pending = { ...prompt, fed: 0 };
    this.promptTokenIds = [...prompt.ids];
    this.promptTokens = prompt.ids.length;
    this.rng = new Rng(request.sampling.seed ?? Math.floor(Math.random() * 2 ** 31));
    if (hooks.recordTrajectory) {
      this.trajectory = { ids: [], positions: [[], [], []], sampled: [], visuals: [] };
      this.record(prompt, 0);
    }
  }

  private record(chunk: PromptChunk, sampled: number): void {
    if (this.trajectory) appendChunk(this.trajectory, this.trajectory.sampled, chunk, sampled);
  }

  /** Takes over another sequence's prompt state (cache length, positions); the KV itself is copied by the caller. */
  adoptPromptOf(parent: Sequence): void {
    this.cacheLength = parent.cacheLength;
    this.cachedPromptTokens = parent.cachedPromptTokens;
    this.rope.next = parent.rope.next;
    this.pending = { ids: [], positions: [[], [], []], visuals: [], fed: 0 };
  }

  /**
   * Takes over what the first sample's run of a client-supplied tool call produced (its step, the
   * added images, the result turn's tokens), so all n samples continue the same conversation.
   */
  copyToolStateFrom(first: Sequence): void {
    this.steps.push(...first.steps);
    this.visual.images.splice(0, this.visual.images.length, ...first.visual.images);
    this.promptTokens = first.promptTokens;
    this.turnIds.splice(0, this.turnIds.length, ...first.turnIds.map((t) => [...t]));
    const t = first.trajectory;
    if (this.trajectory && t) {
      this.trajectory = { ids: [...t.ids], positions: [[...t.positions[0]], [...t.positions[1]], [...t.positions[2]]], sampled: [...t.sampled], visuals: [...t.visuals] };
    }
  }

  /**
   * The caller's forced token at generated index `i` (overrideToken), asked once per index: a
   * pipelined decode asks before the token is accepted, and the hook may have side effects.
   */
  forcedToken(i: number): number | undefined {
    if (this.forced?.index !== i) this.forced = { index: i, token: this.hooks.overrideToken?.(i) };
    return this.forced.token;
  }

  private forced?: { index: number; token: number | undefined };

  /** Tokens in the cache plus those still to be fed. */
  get totalTokens(): number {
    return this.cacheLength + this.pending.ids.length - this.pending.fed;
  }

  get remainingPending(): number {
    return this.pending.ids.length - this.pending.fed;
  }

  get currentTurn(): number[] {
    return this.turnIds[this.turnIds.length - 1]!;
  }

  /** Records a sampled token; it becomes the next thing to feed. */
  appendSampled(id: number): void {
    this.generated.push(id);
    this.currentTurn.push(id);
    this.generatedCounts.set(id, (this.generatedCounts.get(id) ?? 0) + 1);
    const positions: [number[], number[], number[]] = [[], [], []];
    this.rope.text(1, positions);
    this.pending = { ids: [id], positions, visuals: [], fed: 0 };
    if (this.trajectory) this.record(this.pending, 1);
  }

  /** Queues a tool-result turn after the still-pending tokens and opens a new assistant turn. */
  appendInserted(chunk: PromptChunk): void {
    const p = this.pending;
    const keep = p.fed;
    const base = p.ids.length - keep;
    this.pending = {
      // concat, not spread: a prompt's ~750 ids and positions are copied as arrays, not pushed through an iterator.
      ids: p.ids.slice(keep).concat(chunk.ids),
      positions: [0, 1, 2].map((a) => p.positions[a]!.slice(keep).concat(chunk.positions[a]!)) as [number[], number[], number[]],
      visuals: [...p.visuals.filter((v) => v.start >= keep).map((v) => ({ start: v.start - keep, input: v.input })), ...chunk.visuals.map((v) => ({ start: v.start + base, input: v.input }))],
      fed: 0,
    };
    this.promptTokens += chunk.ids.length;
    if (this.trajectory) this.record(chunk, 0);
    this.turnIds.push([]);
    this.emittedChars = 0;
    this.turnText = '';
    this.prefixOffset = 0;
    this.readOffset = 0;
  }

}

let nextId = 0;

/**
 * The n samples of one request, one sequence each (sample i draws with seed + i when a seed is
 * given). The first owns the prompt and its rope positions; the others are its siblings, which copy
 * its prompt cache once it is in. `results` resolve as each sample finishes.
 */
export function createSamples(
  request: GenerationRequest, prompt: BuiltPrompt, rope: RopePositions, processor: ProcessorConfig, n: number, optsFor: (i: number) => GenerateOptions,
  arrivedAt = performance.now(),
): { first: Sequence; results: Promise<GenerationResult>[] } {
  const seqs: Sequence[] = [];
  const results = Array.from({ length: n }, (_, i) => new Promise<GenerationResult>((resolve, reject) => {
    const seed = request.sampling.seed === undefined ? undefined : request.sampling.seed + i;
    const req = i === 0 ? request : { ...request, sampling: { ...request.sampling, seed } };
    const visual = { images: [...prompt.images], videoFrames: prompt.videoFrames, enabledTools: request.tools, processor };
    seqs.push(new Sequence(`seq-${nextId++}`, req, prompt.chunk, i === 0 ? rope : new RopePositions(), visual, { ...optsFor(i), resolve, reject }, arrivedAt));
  }));
  const [first, ...siblings] = seqs as [Sequence, ...Sequence[]];
  first.siblings = siblings;
  return { first, results };
}
