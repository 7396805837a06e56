import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../model/config.js';
import type { Weights } from '../model/weights.js';
import type { Batch } from './batch.js';
import { adamwStep, newAdamState, type AdamState, type OptimizerOptions } from './optimizer.js';
import { openGraph } from './session.js';
import { buildTrainingGraph } from './train-graph.js';
import { VisionTrainer } from './vision-graphs.js';

export interface StepResult {
  loss: number;
  gradNorm: number;
  lr: number;
}

export interface TrainerOptions {
  threads?: number;
  /** Train the vision tower too (its features recomputed each step, gradients through its VJP). */
  trainVision?: boolean;
}

/**
 * Runs training steps on ONNX Runtime: one session holds the text training graph (forward, loss,
 * backward); with a trainable vision tower, two more run its forward and VJP per visual input.
 * Weights are fp32 masters in JS, fed as inputs each step and updated by AdamW.
 */
export class Trainer {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Trainable parameters, views into the model's weights (updated in place). */
    readonly params: Map<string, Float32Array>,
    private readonly textParams: string[],
    private readonly weights: Weights,
    private readonly vision: VisionTrainer | undefined,
    public state: AdamState,
    readonly options: OptimizerOptions,
  ) {}

  static async create(config: ModelConfig, weights: Weights, options: OptimizerOptions, opts: TrainerOptions = {}): Promise<Trainer> {
    const { graph, params: textParams } = buildTrainingGraph(config.text, { visualGrad: opts.trainVision });
    const [session, vision] = await Promise.all([
      openGraph(graph, { threads: opts.threads }),
      opts.trainVision ? VisionTrainer.create(config.vision, config.processor, opts.threads) : undefined,
    ]);
    const values = new Map<string, Float32Array>();
    for (const name of [...textParams, ...(vision?.params ?? [])]) {
      const w = weights.get(name);
      if (!w) throw new Error(`base model has no weight ${name}`);
      values.set(name, w.data);
    }
    return new Trainer(session, values, textParams, weights, vision, newAdamState(values), options);
  }

  private weightFeeds(source: Map<string, Float32Array> = this.params): Record<string, ort.Tensor> {
    return Object.fromEntries(this.textParams.map((name) => [name, new ort.Tensor('float32', source.get(name)!, this.weights.get(name)!.dims)]));
  }

  /** With a trainable vision tower, recomputes every visual input's features with the current weights (once per update). */
  private async refreshVisualFeatures(batch: Batch): Promise<void> {
    if (!this.vision || batch.featuresAtUpdate === this.state.step) return;
    const visual = batch.feeds.visual_embeds!.data as Float32Array;
    const h = batch.feeds.visual_embeds!.dims[2]!;
    for (const slot of batch.visualSlots) {
      if (!slot.input) throw new Error('training the vision tower needs each example\'s visual inputs');
      const features = await this.vision.features(slot.input, this.weights);
      visual.set(features.subarray(0, slot.count * h), slot.offset * h);
    }
    batch.featuresAtUpdate = this.state.step;
  }

  /** Loss and per-token log-probs without an update (with the trained weights, or other text weights of the same shapes). */
  async evaluate(batch: Batch, weights?: Map<string, Float32Array>): Promise<{ loss: number; tokenLogprobs: Float32Array }> {
    await this.refreshVisualFeatures(batch);
    const out = await this.session.run({ ...batch.feeds, ...this.weightFeeds(weights) }, ['loss', 'token_logprobs']);
    return { loss: (out.loss!.data as Float32Array)[0]!, tokenLogprobs: out.token_logprobs!.data as Float32Array };
  }

  /**
   * Forward, backward and one AdamW update. Several micro-batches sum their losses and gradients
   * before the one update (their weights must be normalised over all of them).
   */
  async step(batch: Batch | Batch[]): Promise<StepResult> {
    const batches = Array.isArray(batch) ? batch : [batch];
    const grads = new Map<string, Float32Array>();
    const add = (name: string, g: Float32Array) => {
      const sum = grads.get(name);
      if (!sum) grads.set(name, g);
      else for (let i = 0; i < g.length; i++) sum[i] = sum[i]! + g[i]!;
    };
    let loss = 0;
    for (const b of batches) {
      await this.refreshVisualFeatures(b);
      const out = await this.session.run({ ...b.feeds, ...this.weightFeeds() });
      loss += (out.loss!.data as Float32Array)[0]!;
      for (const name of this.textParams) add(name, out[`grad.${name}`]!.data as Float32Array);
      if (this.vision) {
        const dVisual = out['grad.visual_embeds']!.data as Float32Array;
        const h = b.feeds.visual_embeds!.dims[2]!;
        for (const slot of b.visualSlots) {
          const cot = new Float32Array(slot.input!.numTokens * h);
          cot.set(dVisual.subarray(slot.offset * h, (slot.offset + slot.count) * h));
          await this.vision.accumulate(slot.input!, cot, this.weights, grads);
        }
      }
    }
    const { gradNorm, lr } = adamwStep(this.params, grads, this.state, this.options);
    return { loss, gradNorm, lr };
  }

  async release(): Promise<void> {
    await Promise.all([this.session.release(), this.vision?.release()]);
  }
}
