import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ChatTokenizer } from '../model/chat-tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import type { RgbImage } from '../tools/image.js';
import { errorTurnText, executeToolCall } from '../tools/operations.js';
import { parseLastToolCall } from '../tools/tool-call.js';
import type { EngineMetrics } from './metrics.js';
import { buildToolResultChunk, type PromptChunk } from './prompt.js';
import type { Scheduler } from './scheduler.js';
import type { Sequence } from './sequence.js';
import type { ToolStep } from './types.js';

/** A tool call's outcome and its result turn, ready to be queued on the sequence. */
export interface PreparedTurn {
  step: ToolStep;
  chunk: PromptChunk;
}

/**
 * The pixel-reasoning tool loop. When a sequence samples `</tool_call>`:
 * 1. pause: the scheduler marks it paused; it keeps its KV slot but takes no batch row, so the
 *    other sequences keep decoding;
 * 2. run: the last call of the turn is parsed and its visual operation runs on the request's
 *    full-resolution images (or an error text is produced for a bad call);
 * 3. result turn: the result text and images become a user turn, tokenized with its visual
 *    placeholders and M-RoPE positions continuing the sequence's own;
 * 4. resume: the turn is queued as the sequence's pending tokens and the scheduler prefills only
 *    it, on top of the kept cache, then decoding goes on.
 * A call that ends the client's own prompt runs before the request is scheduled (prepare, then apply),
 * and its turn is queued right after the prompt, so the two prefill as one.
 */
export class ToolLoop {
  constructor(private readonly tokenizer: ChatTokenizer, private readonly config: ModelConfig, private readonly metrics?: EngineMetrics) {}

  /**
   * Steps 1 to 4 for a sequence that sampled `</tool_call>`; the other sequences decode meanwhile. `back` hears of
   * the sequence once it is resumed (`ended` when the result turn leaves no room to generate) or its call failed. A
   * sequence aborted while paused is left alone: it was completed as aborted.
   */
  pause(seq: Sequence, scheduler: Scheduler, back: (outcome: { ended: boolean } | { error: unknown }) => void): void {
    scheduler.pause(seq);
    this.prepare(seq, seq.turnText).then((prepared) => {
      if (!prepared || seq.finishReason) return;
      this.apply(seq, prepared);
      back({ ended: scheduler.resume(seq) !== undefined });
    }, (error: unknown) => {
      if (!seq.finishReason) back({ error });
    });
  }

  /**
   * Runs the call and builds its result turn without touching the sequence's pending tokens (the
   * sequence is paused, or not scheduled yet): `apply` then queues the turn between steps. Undefined
   * when the sequence ended before the call ran (aborted while paused).
   */
  async prepare(seq: Sequence, turnText: string): Promise<PreparedTurn | undefined> {
    // On an event-loop turn of its own: run where the call was sampled (inside an engine step, or a request's intake),
    // the crop and its result turn (~2 ms) would hold back the step's next decode, or the runtime's answers.
    await nextTurn();
    if (seq.finishReason) return undefined;
    const started = performance.now();
    await seq.hooks.beforeTool?.();
    const { step, text, images } = await this.execute(seq, turnText);
    const chunk = await buildToolResultChunk(text, images, this.tokenizer, this.config, seq.rope);
    step.result_text = text;
    step.added_tokens = chunk.ids.length;
    const tool = step.name || 'invalid';
    this.metrics?.toolCalls.inc({ tool, outcome: step.ok ? 'ok' : 'error' });
    this.metrics?.toolLatency.observe({ tool }, (performance.now() - started) / 1000);
    return { step, chunk };
  }

  apply(seq: Sequence, { step, chunk }: PreparedTurn): ToolStep {
    seq.steps.push(step);
    seq.appendInserted(chunk);
    seq.hooks.onEvent?.({ type: 'tool', step });
    return step;
  }

  /** The operation itself: its step record, the text the model will read, and the images it adds. */
  private async execute(seq: Sequence, turnText: string): Promise<{ step: ToolStep; text: string; images: RgbImage[] }> {
    const parsed = parseLastToolCall(turnText);
    const index = seq.steps.length + 1;
    const failed = (name: string, args: unknown, error: string) => ({
      step: { index, name, arguments: args, ok: false, error, result_text: '', added_tokens: 0 }, text: errorTurnText(error), images: [],
    });
    if (!parsed) return failed('', null, 'Invalid tool call: no <tool_call></tool_call> block found.');
    if (!parsed.ok) return failed('', parsed.raw, parsed.error);
    const outcome = await executeToolCall(parsed.call, seq.visual);
    if (!outcome.ok) return failed(parsed.call.name, parsed.call.arguments, outcome.error);
    seq.visual.images.push(...outcome.images);
    const step: ToolStep = {
      index, name: outcome.tool, arguments: parsed.call.arguments, ok: true, box: outcome.box, target_image: outcome.targetImage,
      frames: outcome.frames, result_size: outcome.resultSize, result_text: '', added_tokens: 0, result_images: outcome.images,
    };
    return { step, text: outcome.text, images: outcome.images };
  }
}
