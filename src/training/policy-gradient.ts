import { makeBatch, type Batch, type TrainingExample } from './batch.js';
import type { Trainer } from './trainer.js';

/** A rollout's trace and the advantage of its group (GRPO: its reward normalised within the group). */
export interface ScoredRollout {
  example: TrainingExample;
  advantage: number;
}

/**
 * The RL step's loss for a micro-batch, as loss weights on the training graph's −Σ w·log π(y_t):
 * on each sampled token t of rollout i (T sampled tokens in the whole step),
 *
 *   w_t = A_i / T − β · (log π(y_t) − log π_ref(y_t)) / T
 *
 * The second term is held constant (computed before the step), so its gradient is the
 * score-function gradient of KL(π ‖ π_ref) over the sampled tokens. β = 0 (or no reference) leaves
 * the plain policy gradient. Returns the batch and the sum and count of log π − log π_ref (the KL estimate).
 */
export async function policyGradientBatch(
  trainer: Trainer, rollouts: ScoredRollout[], hidden: number, sampledTokens: number, klCoef: number, reference?: Map<string, Float32Array>,
): Promise<{ batch: Batch; klSum: number; klCount: number }> {
  const T = Math.max(sampledTokens, 1);
  const batch = makeBatch(rollouts.map((r) => r.example), hidden, (k) => rollouts[k]!.advantage / T);
  let klSum = 0;
  let klCount = 0;
  if (reference && klCoef > 0) {
    // One after the other: the first computes the batch's visual features, the second reuses them.
    const now = await trainer.evaluate(batch);
    const ref = await trainer.evaluate(batch, reference);
    const w = batch.feeds.loss_weights!.data as Float32Array;
    for (let k = 0; k < w.length; k++) {
      if (batch.labelMask[k] === 0) continue;
      const diff = now.tokenLogprobs[k]! - ref.tokenLogprobs[k]!;
      w[k] = w[k]! - (klCoef * diff) / T;
      klSum += diff;
      klCount++;
    }
  }
  return { batch, klSum, klCount };
}
