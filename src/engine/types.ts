import type { RgbImage } from '../tools/image.js';
import type { ToolName } from '../tools/definitions.js';
import type { VisualInput } from '../model/processor/image-processor.js';
import type { SamplingParams } from './sampler.js';

/** Message content after the server decoded every image and video. */
export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image'; image: RgbImage }
  | { type: 'video'; frames: RgbImage[]; /** Sampled frames per second of video, when known (else 2, Qwen's default). */ fps?: number };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ContentPart[];
}

export interface GenerationRequest {
  messages: ChatMessage[];
  sampling: SamplingParams;
  maxTokens: number;
  /** Tools offered to the model; empty = prompted without tools (no tool loop). */
  tools: ToolName[];
  maxToolCalls: number;
  stop: string[];
  /** Keep generating past end-of-sequence tokens (vLLM's ignore_eos; for benchmarks). */
  ignoreEos?: boolean;
  /** Top-k log-probabilities to return per generated token (undefined = none). */
  logprobs?: number;
}

/** One executed (or failed) visual operation. */
export interface ToolStep {
  index: number;
  name: string;
  arguments: unknown;
  ok: boolean;
  error?: string;
  /** crop: the cropped box in pixels of the target image [x1, y1, x2, y2]. */
  box?: [number, number, number, number];
  target_image?: number;
  frames?: number[];
  /** [width, height] the result was shown to the model at. */
  result_size?: [number, number];
  /** The result (or `Execution error`) text the model was shown. */
  result_text: string;
  /** Tokens the result turn added to the sequence (text and image tokens). */
  added_tokens: number;
  /** Thumbnails are attached by callers that want them (gRPC, playground). */
  result_images?: RgbImage[];
}

export type FinishReason = 'stop' | 'length' | 'tool_limit' | 'abort' | 'error';

export interface TokenLogprob {
  token: string;
  logprob: number;
  top: { token: string; logprob: number }[];
}

export type GenerationEvent =
  | { type: 'text'; delta: string; tokenIds: number[]; logprobs?: TokenLogprob[] }
  | { type: 'tool'; step: ToolStep };

export interface GenerationResult {
  promptTokenIds: number[];
  /** Every token the model generated, over all turns. */
  tokenIds: number[];
  /** Text of each assistant turn (a turn ends at a tool call or at the end). */
  turns: string[];
  text: string;
  steps: ToolStep[];
  finishReason: FinishReason;
  /** Prompt tokens include tool-result turns the server inserted (their image tokens too). */
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details?: { cached_tokens: number } };
  logprobs?: TokenLogprob[];
  /** The whole token stream, when `recordTrajectory` was asked for (RL trains on it). */
  trajectory?: Trajectory;
}

/**
 * Every token a sequence fed through the model, in order: the prompt, the sampled tokens and the
 * inserted tool-result turns, with M-RoPE positions, which tokens the model sampled, and where
 * the visual inputs sit.
 */
export interface Trajectory {
  ids: number[];
  positions: [number[], number[], number[]];
  /** 1 where the model sampled the token (an action), 0 for prompt and tool-result tokens. */
  sampled: number[];
  visuals: { start: number; input: VisualInput }[];
}

/** Per-request callbacks and controls. */
export interface GenerateOptions {
  onEvent?: (e: GenerationEvent) => void;
  signal?: AbortSignal;
  /** Awaited before a tool runs (tests simulate slow tools with it). */
  beforeTool?: () => Promise<void>;
  /** Observes the logits each generated token was chosen from. */
  onLogits?: (logits: Float32Array) => void;
  /**
   * Forces the token at a generated index (forced decoding; tests drive tool calls with it). A pure function of
   * the index: pipelined greedy decoding asks for index i before onLogits has seen the logits of i (the row
   * that feeds token i is posted while the row that scores it is in flight), and asks once per index.
   */
  overrideToken?: (index: number) => number | undefined;
  /** Return the full token stream in `GenerationResult.trajectory`. */
  recordTrajectory?: boolean;
}
