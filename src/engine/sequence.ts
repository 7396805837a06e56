import type { KvCache } from './model-runner.js';
import type { PromptChunk } from './prompt.js';
import type { RopePositions } from '../tools/rope-index.js';
import type { VisualContext } from '../tools/operations.js';
import type { FinishReason, GenerationRequest, ToolStep, TokenLogprob } from './types.js';
import { Rng } from '../util/random.js';

export type SequenceStatus = 'waiting' | 'running' | 'paused' | 'finished';

/** One request's generation state: its KV cache, what is still to be fed, and what it produced. */
export class Sequence {
  status: SequenceStatus = 'waiting';
  cache: KvCache;
  /** Tokens (with their visuals) not yet in the KV cache: the prompt, a sampled token, or a tool-result turn. */
  pending: PromptChunk;
  readonly promptTokenIds: number[];
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
  readonly rng: Rng;

  constructor(
    readonly id: string,
    readonly request: GenerationRequest,
    prompt: PromptChunk,
    readonly rope: RopePositions,
    readonly visual: VisualContext,
    cache: KvCache,
  ) {
    this.pending = prompt;
    this.promptTokenIds = [...prompt.ids];
    this.promptTokens = prompt.ids.length;
    this.cache = cache;
    this.rng = new Rng(request.sampling.seed ?? Math.floor(Math.random() * 2 ** 31));
  }

  get totalTokens(): number {
    return this.cache.length + this.pending.ids.length;
  }

  get currentTurn(): number[] {
    return this.turnIds[this.turnIds.length - 1]!;
  }

  /** Records a sampled token; it becomes the next thing to feed. */
  appendSampled(id: number): void {
    this.generated.push(id);
    this.currentTurn.push(id);
    this.generatedCounts.set(id, (this.generatedCounts.get(id) ?? 0) + 1);
    const p = this.rope;
    const positions: [number[], number[], number[]] = [[], [], []];
    p.text(1, positions);
    this.pending = { ids: [id], positions, visuals: [] };
  }

  /** Queues a tool-result turn after the pending tokens and opens a new assistant turn. */
  appendInserted(chunk: PromptChunk): void {
    const base = this.pending.ids.length;
    this.pending = {
      ids: [...this.pending.ids, ...chunk.ids],
      positions: [0, 1, 2].map((a) => [...this.pending.positions[a]!, ...chunk.positions[a]!]) as [number[], number[], number[]],
      visuals: [...this.pending.visuals, ...chunk.visuals.map((v) => ({ start: v.start + base, input: v.input }))],
    };
    this.promptTokens += chunk.ids.length;
    this.turnIds.push([]);
    this.emittedChars = 0;
  }

  finish(reason: FinishReason): void {
    this.status = 'finished';
    this.finishReason = reason;
  }
}
