import type { ChatTokenizer } from '../model/chat-tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import { executeToolCall, errorTurnText } from '../tools/operations.js';
import { parseLastToolCall, endsWithToolCall } from '../tools/tool-call.js';
import { RopePositions } from '../tools/rope-index.js';
import type { ModelRunner } from './model-runner.js';
import { buildPrompt, buildToolResultChunk } from './prompt.js';
import { logSoftmax, sampleToken } from './sampler.js';
import { Sequence } from './sequence.js';
import type { RgbImage } from '../tools/image.js';
import type { GenerationEvent, GenerationRequest, GenerationResult, TokenLogprob, ToolStep } from './types.js';

export interface EngineLimits {
  /** Context length: prompt + generated + inserted tool-result tokens. */
  maxModelLen: number;
}

export class PromptTooLongError extends Error {
  constructor(readonly promptTokens: number, readonly maxModelLen: number) {
    super(`This model's maximum context length is ${maxModelLen} tokens. However, your request has ${promptTokens} input tokens. Please reduce the length of the input messages.`);
  }
}

export interface GenerateOptions {
  onEvent?: (e: GenerationEvent) => void;
  signal?: AbortSignal;
  /** Hook to delay tool execution (tests simulate slow tools with it). */
  beforeTool?: () => Promise<void>;
}

let nextId = 0;

/**
 * Runs requests through prefill, decode and the pixel-reasoning tool loop: on `</tool_call>` the
 * sequence pauses, the visual operation runs on the request's own full-resolution images, and
 * the result turn is prefilled incrementally on top of the kept KV cache.
 */
export class Engine {
  private readonly toolCallEnd: number;
  private readonly eos: Set<number>;

  constructor(
    readonly runner: ModelRunner,
    readonly tokenizer: ChatTokenizer,
    readonly config: ModelConfig,
    readonly limits: EngineLimits,
  ) {
    this.toolCallEnd = tokenizer.tokenId('</tool_call>');
    this.eos = new Set(config.eos_token_ids);
  }

  async generate(request: GenerationRequest, opts: GenerateOptions = {}): Promise<GenerationResult> {
    const rope = new RopePositions();
    const prompt = await buildPrompt(request.messages, request.tools, this.tokenizer, this.config, rope);
    if (prompt.chunk.ids.length >= this.limits.maxModelLen) throw new PromptTooLongError(prompt.chunk.ids.length, this.limits.maxModelLen);
    const seq = new Sequence(`seq-${nextId++}`, request, prompt.chunk, rope, {
      images: prompt.images, videoFrames: prompt.videoFrames, enabledTools: request.tools, processor: this.config.processor,
    }, this.runner.emptyCache());
    if (request.tools.length > 0 && endsWithToolCall(prompt.continuedText)) {
      // The client's partial assistant message ends in a call: run it before generating.
      await this.runTool(seq, prompt.continuedText, opts);
    }
    seq.status = 'running';
    while (!seq.finishReason) {
      if (opts.signal?.aborted) {
        seq.finish('abort');
        break;
      }
      await this.step(seq, opts);
    }
    return this.result(seq);
  }

  /** Feeds the pending tokens, samples one token and applies stop / tool-call rules. */
  private async step(seq: Sequence, opts: GenerateOptions): Promise<void> {
    const chunk = seq.pending;
    const embeds = await this.runner.embed(chunk.ids);
    if (chunk.visuals.length > 0) {
      const features = await this.runner.encodeVisual(chunk.visuals.map((v) => v.input));
      const h = this.config.text.hidden_size;
      chunk.visuals.forEach((v, i) => embeds.set(features[i]!, v.start * h));
    }
    const positions = BigInt64Array.from([...chunk.positions[0], ...chunk.positions[1], ...chunk.positions[2]].map(BigInt));
    const { logits, cache } = await this.runner.forward(embeds, positions, seq.cache);
    seq.cache = cache;
    const req = seq.request;
    const token = sampleToken(logits, req.sampling, seq.rng, seq.generatedCounts);
    seq.appendSampled(token);
    const logprob = req.logprobs !== undefined ? this.tokenLogprob(logits, token, req.logprobs) : undefined;
    if (logprob) seq.logprobs.push(logprob);

    if (this.eos.has(token)) {
      seq.currentTurn.pop();
      this.emitText(seq, opts, true, logprob);
      seq.finish('stop');
      return;
    }
    const stopHit = this.emitText(seq, opts, false, logprob);
    if (stopHit) {
      seq.finish('stop');
      return;
    }
    if (token === this.toolCallEnd && req.tools.length > 0) {
      if (seq.steps.length >= req.maxToolCalls) {
        seq.finish('tool_limit');
        return;
      }
      await this.runTool(seq, this.tokenizer.decode(seq.currentTurn), opts);
    }
    if (seq.generated.length >= req.maxTokens) seq.finish('length');
    else if (seq.totalTokens >= this.limits.maxModelLen) seq.finish('length');
  }

  /** Executes the last tool call of `turnText` and queues the result (or error) turn. */
  private async runTool(seq: Sequence, turnText: string, opts: GenerateOptions): Promise<void> {
    seq.status = 'paused';
    opts.onEvent?.({ type: 'turn_end' });
    await opts.beforeTool?.();
    const parsed = parseLastToolCall(turnText);
    const index = seq.steps.length + 1;
    let step: ToolStep;
    let resultText: string;
    let images: RgbImage[] = [];
    if (!parsed || !parsed.ok) {
      const error = parsed ? parsed.error : 'Invalid tool call: no <tool_call></tool_call> block found.';
      step = { index, name: '', arguments: parsed?.raw ?? null, ok: false, error, result_text: '', added_tokens: 0 };
      resultText = errorTurnText(error);
    } else {
      const outcome = await executeToolCall(parsed.call, seq.visual);
      if (outcome.ok) {
        images = outcome.images;
        seq.visual.images.push(...outcome.images);
        step = {
          index, name: outcome.tool, arguments: parsed.call.arguments, ok: true, box: outcome.box, target_image: outcome.targetImage,
          frames: outcome.frames, result_size: outcome.resultSize, result_text: '', added_tokens: 0, result_images: outcome.images,
        };
        resultText = outcome.text;
      } else {
        step = { index, name: parsed.call.name, arguments: parsed.call.arguments, ok: false, error: outcome.error, result_text: '', added_tokens: 0 };
        resultText = errorTurnText(outcome.error);
      }
    }
    const chunk = await buildToolResultChunk(resultText, images, this.tokenizer, this.config, seq.rope);
    step.result_text = resultText;
    step.added_tokens = chunk.ids.length;
    seq.steps.push(step);
    seq.appendInserted(chunk);
    seq.status = 'running';
    opts.onEvent?.({ type: 'tool', step });
  }

  /**
   * Emits the newly decodable text of the current turn. Holds back an incomplete UTF-8 character
   * and any tail that could still become a stop string. Returns true when a stop string was hit.
   */
  private emitText(seq: Sequence, opts: GenerateOptions, final: boolean, logprob?: TokenLogprob): boolean {
    const text = this.tokenizer.decode(seq.currentTurn);
    const stops = seq.request.stop;
    for (const s of stops) {
      const at = text.indexOf(s);
      if (at >= 0) {
        const delta = text.slice(seq.emittedChars, at);
        seq.emittedChars = at;
        seq.turnIds[seq.turnIds.length - 1] = this.tokenizer.encode(text.slice(0, at));
        if (delta) opts.onEvent?.({ type: 'text', delta, tokenIds: [], logprobs: logprob ? [logprob] : undefined });
        return true;
      }
    }
    let end = text.length;
    if (!final) {
      if (text.endsWith('\uFFFD')) end = text.length - 1;
      for (const s of stops) {
        for (let k = Math.min(s.length - 1, end); k > 0; k--) {
          if (text.slice(end - k, end) === s.slice(0, k)) {
            end = Math.min(end, text.length - k);
            break;
          }
        }
      }
    }
    if (end > seq.emittedChars) {
      const delta = text.slice(seq.emittedChars, end);
      seq.emittedChars = end;
      opts.onEvent?.({ type: 'text', delta, tokenIds: [seq.generated.at(-1)!], logprobs: logprob ? [logprob] : undefined });
    }
    return false;
  }

  private tokenLogprob(logits: Float32Array, token: number, topN: number) {
    const lp = logSoftmax(logits);
    const top = topN > 0 ? Array.from(lp.keys()).sort((a, b) => lp[b]! - lp[a]!).slice(0, topN) : [];
    const name = (id: number) => this.tokenizer.decode([id]);
    return { token: name(token), logprob: lp[token]!, top: top.map((id) => ({ token: name(id), logprob: lp[id]! })) };
  }

  private result(seq: Sequence): GenerationResult {
    const turns = seq.turnIds.map((ids) => this.tokenizer.decode(ids));
    const completion = seq.generated.length;
    return {
      promptTokenIds: seq.promptTokenIds,
      tokenIds: seq.generated,
      turns,
      text: turns.join(''),
      steps: seq.steps,
      finishReason: seq.finishReason ?? 'stop',
      usage: { prompt_tokens: seq.promptTokens, completion_tokens: completion, total_tokens: seq.promptTokens + completion },
      logprobs: seq.request.logprobs !== undefined ? seq.logprobs : undefined,
    };
  }
}
