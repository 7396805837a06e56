import type { ChatTokenizer } from '../model/chat-tokenizer.js';
import { logSoftmax } from './sampler.js';
import type { Sequence } from './sequence.js';
import type { GenerationResult, TokenLogprob } from './types.js';

/** What a sampled token did to the output: ended it, hit a stop string, closed a tool call, or just added text. */
export type TokenOutcome = 'eos' | 'stop_string' | 'tool_call' | 'text';

/**
 * Turns sampled tokens into what the caller sees: incremental detokenization (vLLM's prefix/read
 * offsets), stop strings (with the tail that could still become one held back), log-probabilities,
 * text events, and the final result.
 */
export class OutputProcessor {
  private readonly toolCallEnd: number;
  private readonly eos: Set<number>;

  constructor(private readonly tokenizer: ChatTokenizer, eosTokenIds: number[]) {
    this.toolCallEnd = tokenizer.tokenId('</tool_call>');
    this.eos = new Set(eosTokenIds);
  }

  /** Records a sampled token, emits its text, and says what it did. */
  append(seq: Sequence, token: number, logits: Float32Array): TokenOutcome {
    const req = seq.request;
    seq.appendSampled(token);
    const logprob = req.logprobs !== undefined ? this.tokenLogprob(logits, token, req.logprobs) : undefined;
    if (logprob) seq.logprobs.push(logprob);
    if (this.eos.has(token) && !req.ignoreEos) {
      seq.currentTurn.pop();
      seq.readOffset = Math.min(seq.readOffset, seq.currentTurn.length);
      this.emitText(seq, true, logprob);
      return 'eos';
    }
    if (this.emitText(seq, false, logprob)) return 'stop_string';
    if (token === this.toolCallEnd && req.tools.length > 0) {
      this.detokenize(seq, true);
      return 'tool_call';
    }
    return 'text';
  }

  /**
   * Appends the newly decodable text of the current turn (decoding only the last few tokens: a
   * token's text can depend on its neighbours, and an incomplete UTF-8 character is held back).
   */
  private detokenize(seq: Sequence, final: boolean): void {
    const ids = seq.currentTurn;
    const prefix = this.tokenizer.decode(ids.slice(seq.prefixOffset, seq.readOffset));
    const full = this.tokenizer.decode(ids.slice(seq.prefixOffset));
    if (full.length > prefix.length && (final || !full.endsWith('\uFFFD'))) {
      seq.turnText += full.slice(prefix.length);
      seq.prefixOffset = seq.readOffset;
      seq.readOffset = ids.length;
    }
  }

  /**
   * Emits the newly decoded text of the current turn, holding back any tail that could still
   * become a stop string. Returns true when a stop string was hit.
   */
  private emitText(seq: Sequence, final: boolean, logprob?: TokenLogprob): boolean {
    this.detokenize(seq, final);
    const text = seq.turnText;
    const stops = seq.request.stop;
    const emit = (delta: string) => seq.hooks.onEvent?.({ type: 'text', delta, tokenIds: [seq.generated.at(-1)!], logprobs: logprob ? [logprob] : undefined });
    const longestStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
    const searchFrom = Math.max(0, seq.emittedChars - longestStop);
    for (const s of stops) {
      const at = text.indexOf(s, searchFrom);
      if (at >= 0) {
        const delta = text.slice(seq.emittedChars, at);
        seq.emittedChars = at;
        seq.turnIds[seq.turnIds.length - 1] = this.tokenizer.encode(text.slice(0, at));
        if (delta) emit(delta);
        return true;
      }
    }
    let end = text.length;
    if (!final) {
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
      emit(delta);
    }
    return false;
  }

  private tokenLogprob(logits: Float32Array, token: number, topN: number): TokenLogprob {
    const lp = logSoftmax(logits);
    const top = topN > 0 ? Array.from(lp.keys()).sort((a, b) => lp[b]! - lp[a]!).slice(0, topN) : [];
    const name = (id: number) => this.tokenizer.decode([id]);
    return { token: name(token), logprob: lp[token]!, top: top.map((id) => ({ token: name(id), logprob: lp[id]! })) };
  }

  /** The finished request as the caller receives it. */
  result(seq: Sequence): GenerationResult {
    const turns = seq.turnIds.map((ids) => this.tokenizer.decode(ids));
    const completion = seq.generated.length;
    return {
      promptTokenIds: seq.promptTokenIds,
      tokenIds: seq.generated,
      turns,
      text: turns.join(''),
      steps: seq.steps,
      finishReason: seq.finishReason ?? 'stop',
      usage: {
        prompt_tokens: seq.promptTokens, completion_tokens: completion, total_tokens: seq.promptTokens + completion,
        prompt_tokens_details: { cached_tokens: seq.cachedPromptTokens },
      },
      logprobs: seq.request.logprobs !== undefined ? seq.logprobs : undefined,
      trajectory: seq.trajectory,
    };
  }
}
