import type { ChatTokenizer } from '../model/chat-tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import { resolveEngineConfig, type EngineConfig, type EngineOptions } from './engine-config.js';
import { ModelRunner, type Chunk, type DecodedRow } from './model-runner.js';
import type { OnnxModel } from './onnx-model.js';
import { OutputProcessor } from './output-processor.js';
import { Intake } from './intake.js';
import { sampleToken } from './sampler.js';
import { Scheduler } from './scheduler.js';
import type { Sequence } from './sequence.js';
import { ToolLoop } from './tool-loop.js';
import type { GenerateOptions, GenerationRequest, GenerationResult } from './types.js';

export type { GenerateOptions } from './types.js';
export type { EngineOptions } from './engine-config.js';
export { QueueFullError, TooManySamplesError } from './scheduler.js';
export { PromptTooLongError } from './prompt.js';

/**
 * Continuous-batching engine for the pixel-reasoning loop; it glues the parts. Requests become
 * sequences (intake.ts); the scheduler admits and plans each step; the model runner feeds the
 * planned tokens through the model and its KV cache; sampled tokens go through the output
 * processor and the scheduler's finish rules; a sequence that calls a tool pauses in the tool
 * loop (tool-loop.ts) while the others keep decoding, then resumes with only the result turn to prefill.
 */
export class Engine {
  readonly config: EngineConfig;
  private readonly runner: ModelRunner;
  private readonly scheduler: Scheduler;
  private readonly output: OutputProcessor;
  private readonly tools: ToolLoop;
  private readonly intake: Intake;
  private loopRunning = false;
  private wakeUp?: () => void;
  private dirty = false;
  /** Decode rows held back by a pipelined step without a prefill, for the next step to chain on and accept (see step). */
  private ahead?: Promise<(DecodedRow | undefined)[]>;

  constructor(readonly model: OnnxModel, readonly tokenizer: ChatTokenizer, readonly modelConfig: ModelConfig, options: EngineOptions) {
    this.config = resolveEngineConfig(options);
    this.runner = new ModelRunner(model, this.config);
    this.scheduler = new Scheduler(this.config);
    this.output = new OutputProcessor(tokenizer, modelConfig.eos_token_ids);
    this.tools = new ToolLoop(tokenizer, modelConfig, this.config.metrics);
    this.intake = new Intake(tokenizer, modelConfig, this.tools, this.config);
  }

  get maxModelLen(): number {
    return this.config.maxModelLen;
  }

  /**
   * Requests one caller may keep in flight without one being refused with QueueFullError: the
   * waiting-queue bound. With no more than that in flight, the queue never already holds that
   * many others, however slots are freed (a finished request resolves before its slot returns).
   */
  get capacity(): number {
    return this.config.maxWaiting;
  }

  get slots(): { total: number; free: number } {
    return this.scheduler.slots;
  }

  counts(): { running: number; waiting: number; paused: number } {
    return this.scheduler.counts();
  }

  kvUsage(): number {
    return this.scheduler.kvUsage();
  }

  /** Releases the KV pool and the model's sessions (an engine from openEngine owns its model). */
  async release(): Promise<void> {
    await this.runner.release();
    await this.model.release();
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
    const { first, results } = await this.intake.prepare(request, n, optsFor);
    try {
      for (const finished of this.scheduler.add(first)) this.complete(finished);
      this.kick();
    } catch (e) {
      [first, ...first.siblings].forEach((s) => s.hooks.reject(e));
    }
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
      while (!this.scheduler.idle || this.ahead) {
        this.dirty = false;
        for (const seq of this.scheduler.reapAborted()) this.complete(seq);
        if (!(await this.step()) && !this.dirty) await new Promise<void>((r) => (this.wakeUp = r));
        this.wakeUp = undefined;
      }
    } catch (e) {
      this.ahead = undefined; // its rows are stale once their sequences fail
      for (const seq of [...this.scheduler.active, ...this.scheduler.waiting]) this.fail(seq, e);
    } finally {
      this.loopRunning = false;
      this.updateGauges();
    }
  }

  /**
   * One iteration: decode one token for each running sequence; admit, encode new visual inputs and
   * prefill chunks. While every running sequence is plain greedy, steps are pipelined (vLLM's async
   * scheduling): a step posts the next decode, its rows chained from the greedy tokens of the decode
   * still in flight, then accepts that one, so the runtime goes from decode to decode without waiting
   * for this thread's sampling, output processing and scheduling.
   */
  private async step(): Promise<boolean> {
    const ahead = this.ahead;
    const { seqs: decode, pipelined } = this.scheduler.decodePlan(this.runner.chains, (seq) => this.runner.isDecoding(seq));
    if (ahead && !pipelined) {
      // A sequence that samples needs its token before its next row: back to one decode at a time.
      this.ahead = undefined;
      await this.acceptDecoded(ahead);
      return true;
    }
    const prefills = this.scheduler.prefillsThisStep();
    const admitted = this.scheduler.admit();
    this.updateGauges();
    // The decode is posted first: it needs nothing this step prepares (prefix-cache restores, visual
    // encodes), and the runtime runs the prefill while this thread samples the decode.
    const posted = decode.length > 0 ? this.runner.decode(decode, pipelined) : undefined;
    posted?.catch(() => {}); // observed where it is accepted
    const prefilled = this.admitAndPrefill(admitted);
    // Pipelined, the posted rows stay ahead for the next step to chain on, unless this step prefills: it then
    // outlasts them, and their tokens are taken as they answer instead of a whole prefill later.
    const holdsBack = pipelined && !prefills;
    this.ahead = holdsBack ? posted : undefined;
    // Settled together: a failed decode must not leave the prefill's answer (or failure) unobserved.
    const [decodeDone, prefillDone] = await Promise.allSettled([this.acceptDecoded(ahead, holdsBack ? undefined : posted), prefilled]);
    if (decodeDone.status === 'rejected') throw decodeDone.reason;
    if (prefillDone.status === 'rejected') throw prefillDone.reason;
    const { chunks, logits } = prefillDone.value;
    if (decode.length + chunks.length > 0) this.config.metrics?.batchSize.observe(decode.length + chunks.length);
    for (const [i, l] of logits.entries()) if (!chunks[i]!.seq.finishReason) await this.prefilled(chunks[i]!, l);
    // A decode held back that answered while this step waited is accepted now. Left to the next step, its
    // sequences would sit that step out: a row chains only on a row still in flight, not on one answered. (Once
    // the previous rows ahead are accepted, the ones held back are the only ones that can be in flight.)
    if (this.ahead && !this.runner.decodeInFlight) {
      const answered = this.ahead;
      this.ahead = undefined;
      await this.acceptDecoded(answered);
    }
    return decode.length + chunks.length > 0 || ahead !== undefined;
  }

  /** Samples each decode row that answered (none for a sequence that stopped running meanwhile), call after call. */
  private async acceptDecoded(...calls: (Promise<(DecodedRow | undefined)[]> | undefined)[]): Promise<void> {
    for (const rows of calls) for (const row of (await rows) ?? []) if (row) this.accept(row.seq, row.logits, row.greedy);
  }

  /** Starts the newly admitted sequences from the prefix cache, then prefills this step's chunks. */
  private async admitAndPrefill(admitted: Sequence[]): Promise<{ chunks: Chunk[]; logits: Float32Array[] }> {
    await this.runner.restorePrefixes(admitted);
    const chunks = this.scheduler.prefillChunks();
    return { chunks, logits: chunks.length > 0 ? await this.runner.prefill(chunks, () => this.scheduler.upNext(chunks)) : [] };
  }

  /** After a prefill chunk: once the whole pending turn is in, sample (and give forked samples the prompt). */
  private async prefilled({ seq, tokens }: Chunk, logits: Float32Array): Promise<void> {
    if (seq.status === 'prefilling') this.config.metrics?.promptTokens.inc(tokens);
    if (seq.remainingPending > 0) return;
    for (const sibling of this.scheduler.promptDone(seq)) {
      await this.runner.fork(seq, sibling);
      this.accept(sibling, logits);
    }
    this.accept(seq, logits);
  }

  /**
   * Samples the next token (or takes the greedy one the runtime picked for a chained call), emits it,
   * and applies the scheduler's finish and tool-call rules.
   */
  private accept(seq: Sequence, logits: Float32Array, greedy?: number): void {
    seq.hooks.onLogits?.(logits);
    const sampled = greedy ?? sampleToken(logits, seq.request.sampling, seq.rng, seq.generatedCounts);
    const token = seq.forcedToken(seq.generated.length) ?? sampled;
    const outcome = this.output.append(seq, token, logits);
    this.config.metrics?.tokenGenerated(seq);
    const decision = this.scheduler.afterToken(seq, outcome);
    if (decision === 'pause') this.pause(seq);
    else if (decision) this.complete(seq);
  }

  /** A sequence that called a tool waits in the tool loop (tool-loop.ts), keeping its slot, then prefills the result turn. */
  private pause(seq: Sequence): void {
    this.tools.pause(seq, this.scheduler, (outcome) => {
      if ('error' in outcome) this.fail(seq, outcome.error);
      else if (outcome.ended) this.complete(seq);
      this.kick();
    });
  }

  /** Ends a sequence (and the samples still waiting to fork from it) with an error. */
  private fail(seq: Sequence, e: unknown): void {
    for (const s of [seq, ...seq.siblings.splice(0)]) {
      this.scheduler.finish(s, 'error');
      this.runner.free(s);
      s.hooks.reject(e);
    }
  }

  /** Resolves a finished sequence's request. */
  private complete(seq: Sequence): void {
    this.runner.free(seq);
    this.config.metrics?.finished(seq);
    seq.hooks.resolve(this.output.result(seq));
  }

  private updateGauges(): void {
    this.config.metrics?.gauges(this.scheduler.counts(), this.scheduler.kvUsage());
  }
}
