import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../engine/onnx-model.js';
import type { VisualInput } from '../model/processor/image-processor.js';
import type { TokenizedTrace } from './traces.js';

/** A tokenized trace with its visual features computed (the vision encoder is frozen in training). */
export interface TrainingExample {
  ids: number[];
  positions: [number[], number[], number[]];
  weights: number[];
  /** Features from the served vision encoder; `input` is kept so a trainable vision tower can recompute them. */
  visuals: { start: number; features: Float32Array; input?: VisualInput }[];
}

/** Runs the served vision encoder once per example: with a frozen vision tower the features never change. */
export async function featurize(trace: TokenizedTrace, runner: OnnxModel): Promise<TrainingExample> {
  const features = await runner.encodeVisual(trace.visuals.map((v) => v.input));
  return {
    ids: trace.ids, positions: trace.positions, weights: trace.weights,
    visuals: trace.visuals.map((v, i) => ({ start: v.start, features: features[i]!.slice(), input: v.input })),
  };
}

/** An example whose features the trainable vision tower computes each step (zeros until then: nothing is encoded twice). */
export function withoutFeatures(trace: TokenizedTrace, hidden: number): TrainingExample {
  return {
    ids: trace.ids, positions: trace.positions, weights: trace.weights,
    visuals: trace.visuals.map((v) => ({ start: v.start, features: new Float32Array(v.input.numTokens * hidden), input: v.input })),
  };
}

export interface Batch {
  feeds: Record<string, ort.Tensor>;
  /** Non-padding tokens fed through the model. */
  tokens: number;
  /** Sum of the raw loss weights (the trained tokens). */
  trainedTokens: number;
  /** Raw (unscaled) label weights [B*S]: 1 where the label is a trained / sampled token. */
  labelMask: Float32Array;
  /** Where each visual input's features sit in visual_embeds: offset (row*S + start), rows used. */
  visualSlots: { offset: number; count: number; input?: VisualInput }[];
  /** Trainer update count its visual features were computed at (a trainable vision tower skips recomputing them). */
  featuresAtUpdate?: number;
}

/**
 * Packs examples into one right-padded batch for the training graph: inputs are tokens 0..L-2,
 * labels tokens 1..L-1, and label weights scaled by `scale(example)` (SFT: 1 / trained tokens of
 * the batch; RL: advantage / tokens).
 */
export function makeBatch(examples: TrainingExample[], hidden: number, scale: (i: number, trainedTokens: number) => number = (_i, n) => 1 / Math.max(n, 1)): Batch {
  const b = examples.length;
  const s = Math.max(...examples.map((e) => e.ids.length - 1));
  const ids = new BigInt64Array(b * s);
  const labels = new BigInt64Array(b * s);
  const mask = new BigInt64Array(b * s);
  const positions = new BigInt64Array(3 * b * s);
  const textMask = new Float32Array(b * s).fill(1);
  const visual = new Float32Array(b * s * hidden);
  const weights = new Float32Array(b * s);
  const labelMask = new Float32Array(b * s);
  const visualSlots: Batch['visualSlots'] = [];
  const trainedTokens = examples.reduce((a, e) => a + e.weights.slice(1).reduce((x, y) => x + y, 0), 0);
  let tokens = 0;
  examples.forEach((e, row) => {
    const n = e.ids.length - 1;
    tokens += n;
    const f = scale(row, trainedTokens);
    for (let t = 0; t < n; t++) {
      const k = row * s + t;
      ids[k] = BigInt(e.ids[t]!);
      labels[k] = BigInt(e.ids[t + 1]!);
      mask[k] = 1n;
      weights[k] = e.weights[t + 1]! * f;
      labelMask[k] = e.weights[t + 1]!;
      for (let a = 0; a < 3; a++) positions[a * b * s + k] = BigInt(e.positions[a]![t]!);
    }
    for (const v of e.visuals) {
      const count = Math.min(v.features.length / hidden, n - v.start);
      if (count <= 0) continue;
      visual.set(v.features.subarray(0, count * hidden), (row * s + v.start) * hidden);
      visualSlots.push({ offset: row * s + v.start, count, input: v.input });
      textMask.fill(0, row * s + v.start, row * s + v.start + count);
    }
  });
  return {
    tokens, trainedTokens, labelMask, visualSlots,
    feeds: {
      input_ids: new ort.Tensor('int64', ids, [b, s]),
      attention_mask: new ort.Tensor('int64', mask, [b, s]),
      position_ids: new ort.Tensor('int64', positions, [3, b, s]),
      text_mask: new ort.Tensor('float32', textMask, [b, s, 1]),
      visual_embeds: new ort.Tensor('float32', visual, [b, s, hidden]),
      labels: new ort.Tensor('int64', labels, [b, s]),
      loss_weights: new ort.Tensor('float32', weights, [b, s]),
    },
  };
}
