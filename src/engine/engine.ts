import type { ChatTokenizer } from '../model/chat-tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import type { RgbImage } from '../tools/image.js';
import { executeToolCall, errorTurnText } from '../tools/operations.js';
import { parseLastToolCall, endsWithToolCall } from '../tools/tool-call.js';
import { RopePositions } from '../model/processor/rope-index.js';
import { KvPool } from './kv-pool.js';
import type { EngineMetrics } from './metrics.js';
import type { ModelRunner } from './model-runner.js';
import { buildPrompt, buildToolResultChunk } from './prompt.js';
import { logSoftmax, sampleToken } from './sampler.js';
import { BLOCK_TOKENS, PrefixCache } from './prefix-cache.js';
import { Scheduler } from './scheduler.js';
import { Sequence } from './sequence.js';
import type { GenerateOptions, GenerationRequest, GenerationResult, TokenLogprob, ToolStep } from './types.js';

export type { GenerateOptions } from './types.js';

export { QueueFullError } from './scheduler.js';

export interface EngineOptions {
  /** Context length: prompt + generated + inserted tool-result tokens. */
  maxModelLen: number;
  /** KV slots = sequences decoding at once. */
  maxNumSeqs?: number;
  /** Prefill tokens per step over all sequences. */
  maxNumBatchedTokens?: number;
  /** Requests queued without a slot before new ones are refused. */
  maxWaiting?: number;
  /** Cache the KV of prompt-opening text (system prompt, tool definitions) across requests (default on). */
  enablePrefixCaching?: boolean;
  metrics?: EngineMetrics;
}

export class PromptTooLongError extends Error {
  constructor(readonly promptTokens: number, readonly maxModelLen: number) {
    super(`This model's maximum context length is ${maxModelLen} tokens. However, your request has ${promptTokens} input tokens. Please reduce the length of the input messages.`);
  }
}

/** More samples (n) than the engine has sequence slots: the group is admitted whole, so it could never start. */
export class TooManySamplesError extends Error {
  constructor(readonly n: number, readonly slots: number) {
    super(`n = ${n} samples need ${n} sequence slots at once; this server has ${slots} (--max-num-seqs).`);
  }
}

let nextId = 0;
/**
 * Visual inputs share a vision-encoder call only up to this many patches. The encoder masks
 * attention across the inputs of a call, so its cost grows with the square of the call's patches:
 * measured on the tiny model, four 64-patch crops cost 5.1 ms in one call vs 9.3 ms apart, while
 * two 256-patch images cost 11 ms together vs 3 ms apart.
 */
const VISION_PATCHES_PER_CALL = 256;
/** Prefix-cache capacity: 256 blocks of 32 tokens (16 MB for the tiny model). */
const PREFIX_CACHE_BLOCKS = 256;
/** Requests waiting for a slot before new ones are refused (vLLM-style back-pressure). */
const DEFAULT_MAX_WAITING = 256;

/**
 * Continuous-batching engine for the pixel-reasoning loop. Requests become sequences; every step
 * decodes one token for each running sequence in one batched call and prefills chunks of new
 * prompts and tool-result turns. On `</tool_call>` a sequence pauses (keeping its KV slot) while
 * its visual operation runs on the request's full-resolution images; the others keep decoding;
 * then only the result turn is prefilled on top of the kept cache.
 */
export class Engine {
  readonly pool: KvPool;
  private readonly scheduler: Scheduler;
  private readonly toolCallEnd: number;
  private readonly eos: Set<number>;
  private loopRunning = false;
  private wakeUp?: () => void;
  private dirty = false;
  private readonly metrics?: EngineMetrics;
  private readonly prefixCache?: PrefixCache;

  constructor(
    readonly runner: ModelRunner,
    readonly tokenizer: ChatTokenizer,
    readonly config: ModelConfig,
    readonly options: EngineOptions,
  ) {
    this.toolCallEnd = tokenizer.tokenId('</tool_call>');
    this.eos = new Set(config.eos_token_ids);
    this.pool = new KvPool(config.text, options.maxNumSeqs ?? 16, options.maxModelLen, runner.fast);
    this.scheduler = new Scheduler(this.pool, { maxNumBatchedTokens: options.maxNumBatchedTokens ?? 512, maxWaiting: options.maxWaiting ?? DEFAULT_MAX_WAITING });
    this.metrics = options.metrics;
    if (runner.fast && options.enablePrefixCaching !== false) this.prefixCache = new PrefixCache(this.pool, PREFIX_CACHE_BLOCKS);
  }

  get maxModelLen(): number {
    return this.options.maxModelLen;
  }

  /**
   * Requests one caller may keep in flight without one being refused with QueueFullError: the
   * waiting-queue bound. With no more than that in flight, the queue never already holds that
   * many others, however slots are freed (a finished request resolves before its slot returns).
   */
  get capacity(): number {
    return this.options.maxWaiting ?? DEFAULT_MAX_WAITING;
  }

  counts(): { running: number; waiting: number; paused: number } {
    return this.scheduler.counts();
  }

  /** Queues a request; resolves when it finishes (stop, length, tool limit or abort). */
  async generate(request: GenerationRequest, opts: GenerateOptions = {}): Promise<GenerationResult> {
    return (await this.generateMany(request, 1, () => opts))[0]!;
  }

  /**
   * n samples of one request sharing a single prompt prefill: the first sequence prefills, then
   * its KV cache is copied once into each sibling's slot and every sample draws its own first
   * token from the same logits (sample i uses seed + i when a seed is given).
   */
  async generateMany(request: GenerationRequest, n: number, optsFor: (i: number) => GenerateOptions = () => ({})): Promise<GenerationResult[]> {
    if (n > this.pool.slots) throw new TooManySamplesError(n, this.pool.slots);
    const rope = new RopePositions();
    const prompt = await buildPrompt(request.messages, request.tools, this.tokenizer, this.config, rope);
    if (prompt.chunk.ids.length >= this.maxModelLen) throw new PromptTooLongError(prompt.chunk.ids.length, this.maxModelLen);
    const results: Promise<GenerationResult>[] = [];
    const seqs: Sequence[] = [];
    for (let i = 0; i < n; i++) {
      const seed = request.sampling.seed === undefined ? undefined : request.sampling.seed + i;
      const req = i === 0 ? request : { ...request, sampling: { ...request.sampling, seed } };
      results.push(new Promise<GenerationResult>((resolve, reject) => {
        seqs.push(new Sequence(`seq-${nextId++}`, req, prompt.chunk, i === 0 ? rope : new RopePositions(), {
          images: [...prompt.images], videoFrames: prompt.videoFrames, enabledTools: request.tools, processor: this.config.processor,
        }, { ...optsFor(i), resolve, reject }));
      }));
    }
    const [first, ...siblings] = seqs;
    first!.siblings = siblings;
    const fail = (e: unknown) => seqs.forEach((s) => s.hooks.reject(e));
    const enqueue = () => {
      try {
        this.scheduler.add(first!);
      } catch (e) {
        fail(e);
        return;
      }
      this.updateGauges();
      this.kick();
    };
    if (request.tools.length > 0 && endsWithToolCall(prompt.continuedText)) {
      // The client's partial assistant message ends in a call: run it before generating (once for all samples).
      this.runTool(first!, prompt.continuedText).then(() => {
        for (const s of siblings) {
          s.pending = { ...first!.pending, fed: 0 };
          s.steps.push(...first!.steps);
          s.visual.images.splice(0, s.visual.images.length, ...first!.visual.images);
          s.promptTokens = first!.promptTokens;
          s.turnIds.splice(0, s.turnIds.length, ...first!.turnIds.map((t) => [...t]));
          const t = first!.trajectory;
          if (s.trajectory && t) {
            s.trajectory = { ids: [...t.ids], positions: [[...t.positions[0]], [...t.positions[1]], [...t.positions[2]]], sampled: [...t.sampled], visuals: [...t.visuals] };
          }
        }
        enqueue();
      }, fail);
    } else enqueue();
    return Promise.all(results);
  }

  private kick(): void {
    this.dirty = true;
    this.wakeUp?.();
    if (!this.loopRunning) void this.loop();
  }

  private async loop(): Promise<void> {
    this.loopRunning = true;
    try {
      for (;;) {
        this.dirty = false;
        this.reapAborted();
        for (const seq of this.scheduler.admit()) {
          this.metrics?.queueTime.observe((seq.scheduledAt! - seq.arrivedAt) / 1000);
          if (seq.status === 'prefilling') this.restorePrefix(seq);
        }
        const plan = this.scheduler.schedule();
        this.updateGauges();
        if (plan.decode.length === 0 && plan.prefill.length === 0) {
          if (this.scheduler.active.length === 0 && this.scheduler.waiting.length === 0) break;
          if (!this.dirty) await new Promise<void>((r) => (this.wakeUp = r));
          this.wakeUp = undefined;
          continue;
        }
        this.metrics?.batchSize.observe(plan.decode.length + plan.prefill.length);
        await this.encodeVisuals([...plan.prefill.map((p) => p.seq), ...plan.decode]);
        if (plan.decode.length > 0) await this.decodeStep(plan.decode);
        for (const p of plan.prefill) if (!p.seq.finishReason) await this.prefillStep(p.seq, p.tokens);
      }
    } catch (e) {
      for (const seq of [...this.scheduler.active, ...this.scheduler.waiting]) {
        this.scheduler.remove(seq);
        seq.finish('error');
        seq.hooks.reject(e);
      }
    } finally {
      this.loopRunning = false;
      this.updateGauges();
    }
  }

  /** Tokens of the prompt's opening text (before any visual token) that may be cached. */
  private cacheablePrefix(seq: Sequence): number {
    const p = seq.pending;
    // At least one token is left to feed: its logits give the first sample.
    return Math.min(p.visuals[0]?.start ?? p.ids.length, p.ids.length - 1);
  }

  /** Starts a newly admitted sequence from the cached KV of its prompt's opening text, if any. */
  private restorePrefix(seq: Sequence): void {
    if (!this.prefixCache || seq.cacheLength > 0) return;
    const limit = this.cacheablePrefix(seq);
    const hit = this.prefixCache.restore(seq.slot!, seq.pending.ids, limit);
    this.metrics?.prefixQueries.inc(limit - (limit % BLOCK_TOKENS));
    this.metrics?.prefixHits.inc(hit);
    this.metrics?.promptTokens.inc(hit);
    seq.pending.fed = hit;
    seq.cacheLength = hit;
    seq.cachedPromptTokens = hit;
  }

  /** After a prompt chunk: caches the whole blocks of its opening text that the slot now holds. */
  private storePrefix(seq: Sequence): void {
    // Only a chunk fed from position 0 (the prompt, not a resumed tool-result turn) opens with that text.
    if (!this.prefixCache || seq.cacheLength !== seq.pending.fed) return;
    this.prefixCache.store(seq.slot!, seq.pending.ids, Math.min(seq.pending.fed, this.cacheablePrefix(seq)));
  }

  private reapAborted(): void {
    for (const seq of [...this.scheduler.active, ...this.scheduler.waiting]) {
      if (seq.hooks.signal?.aborted && !seq.finishReason) {
        seq.finish('abort');
        this.complete(seq);
      }
    }
  }

  /**
   * Encodes the visual inputs pending in this step's sequences, small ones several per
   * vision-encoder call (up to VISION_PATCHES_PER_CALL patches).
   */
  private async encodeVisuals(seqs: Sequence[]): Promise<void> {
    const todo = seqs.filter((s) => s.pending.visuals.length > 0 && !s.pending.features);
    if (todo.length === 0) return;
    const inputs = todo.flatMap((s) => s.pending.visuals.map((v) => v.input));
    const features: Float32Array[] = [];
    const patches = (x: (typeof inputs)[number]) => x.grid[0] * x.grid[1] * x.grid[2];
    for (let i = 0; i < inputs.length; ) {
      let j = i + 1;
      let total = patches(inputs[i]!);
      while (j < inputs.length && total + patches(inputs[j]!) <= VISION_PATCHES_PER_CALL) total += patches(inputs[j++]!);
      features.push(...(await this.runner.encodeVisual(inputs.slice(i, j))));
      i = j;
    }
    let k = 0;
    for (const s of todo) s.pending.features = s.pending.visuals.map(() => features[k++]!);
  }

  /** Embeddings of pending tokens [start, start + n), visual rows replaced by their features. */
  private async chunkEmbeds(seq: Sequence, start: number, n: number): Promise<Float32Array> {
    const p = seq.pending;
    const h = this.config.text.hidden_size;
    const embeds = await this.runner.embed(p.ids.slice(start, start + n));
    p.visuals.forEach((v, k) => {
      const lo = Math.max(start, v.start);
      const hi = Math.min(start + n, v.start + v.input.numTokens);
      if (lo < hi) embeds.set(p.features![k]!.subarray((lo - v.start) * h, (hi - v.start) * h), (lo - start) * h);
    });
    return embeds;
  }

  private positionsOf(seq: Sequence, start: number, n: number): number[][] {
    return seq.pending.positions.map((axis) => axis.slice(start, start + n));
  }

  /** One batched decode call over slots [0, max slot]; rows of slots not decoding are inert dummies. */
  private async decodeStep(seqs: Sequence[]): Promise<void> {
    const h = this.config.text.hidden_size;
    const v = this.config.text.vocab_size;
    if (!this.runner.fast) {
      for (const seq of seqs) await this.prefillStep(seq, 1);
      return;
    }
    const rows = Math.max(...seqs.map((s) => s.slot!)) + 1;
    const embeds = new Float32Array(rows * h);
    const positions = new BigInt64Array(3 * rows);
    for (const seq of seqs) {
      const r = seq.slot!;
      embeds.set(await this.chunkEmbeds(seq, seq.pending.fed, 1), r * h);
      const pos = this.positionsOf(seq, seq.pending.fed, 1);
      for (let a = 0; a < 3; a++) positions[a * rows + r] = BigInt(pos[a]![0]!);
    }
    // Rows of slots that are not decoding this step (free, paused, prefilling) are inert: their
    // outputs are ignored and nothing is written to their slots.
    const logits = await this.runner.runPooled(this.pool, 0, rows, 1, embeds, positions, seqs.map((s) => s.slot!));
    for (const seq of seqs) {
      seq.pending.fed += 1;
      seq.cacheLength += 1;
      this.afterLogits(seq, logits.subarray(seq.slot! * v, (seq.slot! + 1) * v));
    }
  }

  /** Feeds `n` pending tokens of one sequence; samples when its pending chunk is complete. */
  private async prefillStep(seq: Sequence, n: number): Promise<void> {
    const start = seq.pending.fed;
    const embeds = await this.chunkEmbeds(seq, start, n);
    const pos = this.positionsOf(seq, start, n);
    const positions = BigInt64Array.from(pos.flat().map(BigInt));
    let logits: Float32Array;
    if (this.runner.fast) {
      logits = await this.runner.runPooled(this.pool, seq.slot!, 1, n, embeds, positions, [0]);
    } else {
      const r = await this.runner.forward(embeds, positions, seq.stdCache ?? this.runner.emptyCache());
      seq.stdCache = r.cache;
      logits = r.logits;
      this.pool.advance(seq.slot!, n);
    }
    seq.pending.fed += n;
    seq.cacheLength += n;
    const isPrompt = seq.status === 'prefilling';
    if (isPrompt) {
      this.metrics?.promptTokens.inc(n);
      this.storePrefix(seq);
    }
    if (seq.remainingPending > 0) return;
    if (isPrompt) seq.status = 'running';
    for (const sibling of seq.siblings.splice(0)) {
      if (sibling.finishReason) continue;
      if (this.runner.fast) this.pool.copy(seq.slot!, sibling.slot!, seq.cacheLength);
      else this.pool.advance(sibling.slot!, seq.cacheLength);
      sibling.adoptPromptOf(seq);
      this.afterLogits(sibling, logits);
    }
    this.afterLogits(seq, logits);
  }

  /** Samples the next token and applies the stop, length and tool-call rules. */
  private afterLogits(seq: Sequence, logits: Float32Array): void {
    const req = seq.request;
    seq.hooks.onLogits?.(logits);
    const sampled = sampleToken(logits, req.sampling, seq.rng, seq.generatedCounts);
    const token = seq.hooks.overrideToken?.(seq.generated.length) ?? sampled;
    seq.appendSampled(token);
    const now = performance.now();
    if (seq.firstTokenAt === undefined) {
      seq.firstTokenAt = now;
      this.metrics?.ttft.observe((now - seq.arrivedAt) / 1000);
    } else this.metrics?.interToken.observe((now - seq.lastTokenAt!) / 1000);
    seq.lastTokenAt = now;
    this.metrics?.generationTokens.inc();
    const logprob = req.logprobs !== undefined ? this.tokenLogprob(logits, token, req.logprobs) : undefined;
    if (logprob) seq.logprobs.push(logprob);

    if (this.eos.has(token) && !req.ignoreEos) {
      seq.currentTurn.pop();
      seq.readOffset = Math.min(seq.readOffset, seq.currentTurn.length);
      this.emitText(seq, true, logprob);
      seq.finish('stop');
    } else if (this.emitText(seq, false, logprob)) {
      seq.finish('stop');
    } else if (token === this.toolCallEnd && req.tools.length > 0) {
      if (seq.steps.length >= req.maxToolCalls) seq.finish('tool_limit');
      else {
        this.detokenize(seq, true);
        this.pause(seq);
        return;
      }
    } else if (seq.generated.length >= req.maxTokens || seq.totalTokens >= this.maxModelLen) {
      seq.finish('length');
    }
    if (seq.finishReason) this.complete(seq);
  }

  /** Pauses a sequence in its tool; it keeps its slot but takes no batch row until the result turn is queued. */
  private pause(seq: Sequence): void {
    seq.status = 'paused';
    const started = performance.now();
    this.runTool(seq, seq.turnText)
      .then((step) => {
        this.metrics?.toolLatency.observe({ tool: step.name || 'invalid' }, (performance.now() - started) / 1000);
        if (seq.finishReason) return;
        if (seq.totalTokens >= this.maxModelLen) {
          seq.finish('length');
          this.complete(seq);
        } else seq.status = 'prefilling';
        this.kick();
      })
      .catch((e: unknown) => {
        seq.finish('error');
        this.scheduler.remove(seq);
        seq.hooks.reject(e);
        this.kick();
      });
  }

  /** Executes the last tool call of `turnText` and queues the result (or error) turn. */
  private async runTool(seq: Sequence, turnText: string): Promise<ToolStep> {
    await seq.hooks.beforeTool?.();
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
    this.metrics?.toolCalls.inc({ tool: step.name || 'invalid', outcome: step.ok ? 'ok' : 'error' });
    seq.hooks.onEvent?.({ type: 'tool', step });
    return step;
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

  /** Frees the sequence's slot and resolves its request. */
  private complete(seq: Sequence): void {
    this.scheduler.remove(seq);
    this.metrics?.e2e.observe((performance.now() - seq.arrivedAt) / 1000);
    this.metrics?.requests.inc({ finished_reason: seq.finishReason ?? 'stop' });
    const turns = seq.turnIds.map((ids) => this.tokenizer.decode(ids));
    const completion = seq.generated.length;
    seq.hooks.resolve({
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
    });
  }

  private updateGauges(): void {
    if (!this.metrics) return;
    const c = this.scheduler.counts();
    this.metrics.running.set(c.running);
    this.metrics.waiting.set(c.waiting);
    this.metrics.paused.set(c.paused);
    this.metrics.kvUsage.set(this.pool.usage());
  }
}
