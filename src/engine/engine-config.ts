import { preprocessWorkerCount } from '../model/processor/preprocess-pool.js';
import type { EngineMetrics } from './metrics.js';

/** Every engine setting, with its default in one place (the server's flags default to these too). */
export interface EngineConfig {
  /** Context length: prompt + generated + inserted tool-result tokens. */
  maxModelLen: number;
  /** KV slots = sequences decoding at once. */
  maxNumSeqs: number;
  /** Prefill tokens per step over all sequences (decode rows are extra). */
  maxNumBatchedTokens: number;
  /** Requests queued without a slot before new ones are refused. */
  maxWaiting: number;
  /** Cache the KV of prompt-opening text (system prompt, tool definitions) across requests. */
  enablePrefixCaching: boolean;
  /** Prefix-cache capacity in blocks of 32 tokens (256 blocks are 16 MB for the tiny model). */
  prefixCacheBlocks: number;
  /**
   * Visual inputs share a vision-encoder call only up to this many patches. The encoder masks
   * attention across the inputs of a call, so its cost grows with the square of the call's patches:
   * measured on the tiny model, four 64-patch crops cost 5.1 ms in one call vs 9.3 ms apart, while
   * two 256-patch images cost 11 ms together vs 3 ms apart.
   */
  visionPatchesPerCall: number;
  /**
   * Requests prepared at once (chat template, tokenizing, image resizing), in arrival order: as many
   * as the preprocessing workers, min(4, cores - 1), and at least one. More would only wait at the workers, while their
   * tokenizing and resizing on the event loop took cores from the model's runtime: on 2 cores, two
   * at a time gave the tiny model's benchmark a median of 86% of the raw graphs over 10 runs, one at
   * a time 89%. A slow request (a large image, a slow client tool call) holds one of them.
   */
  intakeConcurrency: number;
  metrics?: EngineMetrics;
}

export const ENGINE_DEFAULTS = {
  maxNumSeqs: 16,
  maxNumBatchedTokens: 512,
  maxWaiting: 256,
  enablePrefixCaching: true,
  prefixCacheBlocks: 256,
  visionPatchesPerCall: 256,
  intakeConcurrency: Math.max(1, preprocessWorkerCount()),
} as const satisfies Partial<EngineConfig>;

/** What callers pass: the context length, and any setting that differs from the defaults. */
export type EngineOptions = Pick<EngineConfig, 'maxModelLen'> & Partial<EngineConfig>;

export function resolveEngineConfig(options: EngineOptions): EngineConfig {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...ENGINE_DEFAULTS, ...defined } as EngineConfig;
}
