import * as ort from 'onnxruntime-node';
import type { TextConfig } from '../model/config.js';
import type { Weights } from '../model/weights.js';
import type { Batch } from './batch.js';
import { adamwStep, newAdamState, type AdamState, type OptimizerOptions } from './optimizer.js';
import { openGraph } from './session.js';
import { buildTrainingGraph } from './train-graph.js';

export interface StepResult {
  loss: number;
  gradNorm: number;
  lr: number;
}

/**
 * Runs training steps on ONNX Runtime: one session holds the training graph (forward, loss,
 * backward); weights are fp32 masters in JS, fed as inputs each step and updated by AdamW.
 */
export class Trainer {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Trainable (text) parameters, a view into the model's weights (updated in place). */
    readonly params: Map<string, Float32Array>,
    private readonly dims: Map<string, number[]>,
    public state: AdamState,
    readonly options: OptimizerOptions,
  ) {}

  static async create(text: TextConfig, weights: Weights, options: OptimizerOptions, threads?: number): Promise<Trainer> {
    const { graph, params } = buildTrainingGraph(text);
    const session = await openGraph(graph, { threads });
    const values = new Map<string, Float32Array>();
    const dims = new Map<string, number[]>();
    for (const name of params) {
      const w = weights.get(name);
      if (!w) throw new Error(`base model has no weight ${name}`);
      values.set(name, w.data);
      dims.set(name, w.dims);
    }
    return new Trainer(session, values, dims, newAdamState(values), options);
  }

  private weightFeeds(): Record<string, ort.Tensor> {
    return Object.fromEntries([...this.params].map(([name, data]) => [name, new ort.Tensor('float32', data, this.dims.get(name)!)]));
  }

  /** Loss and per-token log-probs without an update (with the trained weights, or others of the same shapes). */
  async evaluate(batch: Batch, weights?: Map<string, Float32Array>): Promise<{ loss: number; tokenLogprobs: Float32Array }> {
    const feeds = weights
      ? Object.fromEntries([...weights].map(([name, data]) => [name, new ort.Tensor('float32', data, this.dims.get(name)!)]))
      : this.weightFeeds();
    const out = await this.session.run({ ...batch.feeds, ...feeds }, ['loss', 'token_logprobs']);
    return { loss: (out.loss!.data as Float32Array)[0]!, tokenLogprobs: out.token_logprobs!.data as Float32Array };
  }

  /**
   * Forward, backward and one AdamW update. Several micro-batches sum their losses and gradients
   * before the one update (their weights must be normalised over all of them).
   */
  async step(batch: Batch | Batch[]): Promise<StepResult> {
    const batches = Array.isArray(batch) ? batch : [batch];
    const grads = new Map<string, Float32Array>();
    let loss = 0;
    for (const b of batches) {
      const out = await this.session.run({ ...b.feeds, ...this.weightFeeds() });
      loss += (out.loss!.data as Float32Array)[0]!;
      for (const name of this.params.keys()) {
        const g = out[`grad.${name}`]!.data as Float32Array;
        const sum = grads.get(name);
        if (!sum) grads.set(name, g);
        else for (let i = 0; i < g.length; i++) sum[i] = sum[i]! + g[i]!;
      }
    }
    const { gradNorm, lr } = adamwStep(this.params, grads, this.state, this.options);
    return { loss, gradNorm, lr };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
