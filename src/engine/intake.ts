import { setImmediate as nextTurn } from 'node:timers/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import type { ChatTokenizer } from '../model/chat-tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import { RopePositions } from '../model/processor/rope-index.js';
import { endsWithToolCall } from '../tools/tool-call.js';
import type { EngineConfig } from './engine-config.js';
import { buildPrompt, PromptTooLongError } from './prompt.js';
import { createSamples, type Sequence } from './sequence.js';
import type { ToolLoop } from './tool-loop.js';
import type { GenerateOptions, GenerationRequest, GenerationResult } from './types.js';

/** A request's samples as sequences: the first holds the prompt, the others are its siblings. */
export interface PreparedRequest {
  first: Sequence;
  results: Promise<GenerationResult>[];
}

/**
 * Where requests become sequences: the conversation rendered with the chat template, tokenized,
 * its images resized. A call that ends the client's partial assistant message runs here (once for
 * all samples), and its result turn follows the prompt in the pending tokens, so the two prefill as
 * one. Requests are prepared a few at a time (intakeConcurrency), in arrival order: prepared all at
 * once, a burst of requests would finish preparing together, and the model would wait for the
 * whole burst before its first prefill.
 */
export class Intake {
  private readonly limit: LimitFunction;

  constructor(
    private readonly tokenizer: ChatTokenizer, private readonly modelConfig: ModelConfig, private readonly tools: ToolLoop, private readonly config: EngineConfig,
  ) {
    this.limit = pLimit(config.intakeConcurrency);
  }

  prepare(request: GenerationRequest, n: number, optsFor: (i: number) => GenerateOptions): Promise<PreparedRequest> {
    const arrivedAt = performance.now();
    return this.limit(async () => {
      // A turn of its own per request: small images resize inline, so without it a burst is prepared in one run of
      // microtasks, and the runtime's answers (the first prefill) and HTTP wait for all of it (~100 ms for 16 in the bench).
      await nextTurn();
      const rope = new RopePositions();
      const prompt = await buildPrompt(request.messages, request.tools, this.tokenizer, this.modelConfig, rope);
      if (prompt.chunk.ids.length >= this.config.maxModelLen) throw new PromptTooLongError(prompt.chunk.ids.length, this.config.maxModelLen);
      const samples = createSamples(request, prompt, rope, this.modelConfig.processor, n, optsFor, arrivedAt);
      if (request.tools.length > 0 && endsWithToolCall(prompt.continuedText)) {
        const turn = await this.tools.prepare(samples.first, prompt.continuedText); // not scheduled yet: never ended
        if (turn) this.tools.apply(samples.first, turn);
      }
      return samples;
    });
  }
}
