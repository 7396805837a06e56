import * as ort from 'onnxruntime-node';
import { buildVisionGraph } from '../model/architecture/vision-encoder.js';
import { patchDim, type ProcessorConfig, type VisionConfig } from '../model/config.js';
import { pixelValues } from '../model/processor/patchify.js';
import type { VisualInput } from '../model/processor/image-processor.js';
import { appendBackward } from './autodiff/backward.js';
import { paramsAsInputs } from './autodiff/params-as-inputs.js';
import { openGraph } from './session.js';

/**
 * The vision tower during training, as two sessions over the served layers with parameters as
 * inputs: the forward (features of one visual input) and its vector-Jacobian product (given
 * d loss / d features from the training step, the gradient of every vision parameter). Chaining
 * them through the text step's `grad.visual_embeds` trains the whole model; each visual input runs
 * alone, so vision attention stays the size of one image, not of the batch.
 */
export class VisionTrainer {
  private constructor(
    private readonly forwardSession: ort.InferenceSession,
    private readonly vjpSession: ort.InferenceSession,
    readonly params: string[],
    private readonly config: VisionConfig,
    private readonly processor: ProcessorConfig,
  ) {}

  static async create(config: VisionConfig, processor: ProcessorConfig, threads?: number): Promise<VisionTrainer> {
    // The dense layout: the same function as the per-input one, in ops the autodiff rules cover.
    const c: VisionConfig = { ...config, per_input_attention: false };
    const fwd = buildVisionGraph(c);
    const params = paramsAsInputs(fwd);
    const vjp = buildVisionGraph(c);
    paramsAsInputs(vjp);
    const cot = vjp.input('features_cotangent', 'float32', ['num_tokens', c.out_hidden_size]);
    const features = vjp.nodes.find((n) => n.outputs.includes('image_features'))!.inputs[0]!;
    const loss = vjp.op('ReduceSum', [vjp.op('Mul', [features, cot])], { keepdims: { i: 0 } });
    appendBackward(vjp, loss, params).forEach((d, i) => vjp.output(d, `grad.${params[i]}`, 'float32', vjp.inputs.find((v) => v.name === params[i])!.shape));
    const [f, v] = await Promise.all([openGraph(fwd, { threads }), openGraph(vjp, { threads })]);
    return new VisionTrainer(f, v, params, c, processor);
  }

  private feeds(input: VisualInput, weights: Map<string, { data: Float32Array; dims: number[] }>): Record<string, ort.Tensor> {
    const rows = input.grid[0] * input.grid[1] * input.grid[2];
    const feeds: Record<string, ort.Tensor> = {
      pixel_values: new ort.Tensor('float32', pixelValues(input, this.processor), [rows, patchDim(this.config)]),
      image_grid_thw: new ort.Tensor('int64', BigInt64Array.from(input.grid.map(BigInt)), [1, 3]),
    };
    for (const p of this.params) feeds[p] = new ort.Tensor('float32', weights.get(p)!.data, weights.get(p)!.dims);
    return feeds;
  }

  async features(input: VisualInput, weights: Map<string, { data: Float32Array; dims: number[] }>): Promise<Float32Array> {
    const out = await this.forwardSession.run(this.feeds(input, weights), ['image_features']);
    return out.image_features!.data as Float32Array;
  }

  /** Adds d loss / d params of one visual input into `grads`, given d loss / d features [tokens, H]. */
  async accumulate(input: VisualInput, cotangent: Float32Array, weights: Map<string, { data: Float32Array; dims: number[] }>, grads: Map<string, Float32Array>): Promise<void> {
    const feeds = this.feeds(input, weights);
    feeds.features_cotangent = new ort.Tensor('float32', cotangent, [input.numTokens, this.config.out_hidden_size]);
    const out = await this.vjpSession.run(feeds, this.params.map((p) => `grad.${p}`));
    for (const p of this.params) {
      const g = out[`grad.${p}`]!.data as Float32Array;
      const sum = grads.get(p);
      if (!sum) grads.set(p, Float32Array.from(g));
      else for (let i = 0; i < g.length; i++) sum[i] = sum[i]! + g[i]!;
    }
  }

  async release(): Promise<void> {
    await Promise.all([this.forwardSession.release(), this.vjpSession.release()]);
  }
}
