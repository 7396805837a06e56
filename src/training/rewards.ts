/**
 * Curiosity-driven RL rewards (DESIGN.md §5):
 *   r'(x,y) = r(x,y) + α·r_curiosity(x,y) + β·r_penalty(y)
 *   r_curiosity = max(H − RaPR(x), 0) · 1[y uses pixel-space reasoning]
 *   r_penalty   = min(N − n_vo(y), 0)
 * with the reference implementation's constants: H = 0.3, N = 1, β = 0.05, and a bonus of
 * max(H − RaPR, 0) / 2 (images) or / 1.5 (videos), divided by RaPR and scaled by α = 0.25.
 */

export interface Rollout {
  correct: boolean;
  /** Visual operations the rollout called (n_vo). */
  visualOps: number;
  /** True when the rollout's last visual operation failed and no later one succeeded. */
  lastOpFailed: boolean;
}

export interface RewardConfig {
  /** Curiosity threshold H on RaPR. */
  H: number;
  /** Curiosity scale α. */
  alpha: number;
  /** Penalty scale β. */
  beta: number;
  /** Operations allowed before the penalty starts (N). */
  N: number;
  /** Bonus divisor for image and video prompts (reference: 2 and 1.5). */
  imageDivisor: number;
  videoDivisor: number;
  /** Divide the bonus by RaPR (reference: yes), so rarer pixel reasoning earns more per rollout. */
  divideByRapr: boolean;
}

export const REFERENCE_REWARD: RewardConfig = { H: 0.3, alpha: 0.25, beta: 0.05, N: 1, imageDivisor: 2, videoDivisor: 1.5, divideByRapr: true };

export interface RewardParts {
  correctness: number;
  curiosity: number;
  penalty: number;
  total: number;
}

/** RaPR(x): fraction of the group's rollouts that used at least one visual operation. */
export function rapr(group: Rollout[]): number {
  return group.length === 0 ? 0 : group.filter((r) => r.visualOps > 0).length / group.length;
}

/** Rewards of one prompt's group of rollouts, part by part. */
export function groupRewards(group: Rollout[], isVideo: boolean, cfg: RewardConfig = REFERENCE_REWARD): RewardParts[] {
  const rate = rapr(group);
  const gap = Math.max(cfg.H - rate, 0) / (isVideo ? cfg.videoDivisor : cfg.imageDivisor);
  const bonus = rate > 0 ? cfg.alpha * (cfg.divideByRapr ? gap / rate : gap) : 0;
  return group.map((r) => {
    // A correct answer whose last operation failed and was never fixed earns nothing.
    const correctness = r.correct && !r.lastOpFailed ? 1 : 0;
    const curiosity = r.visualOps > 0 ? bonus : 0;
    const penalty = cfg.beta * Math.min(cfg.N - r.visualOps, 0);
    return { correctness, curiosity, penalty, total: correctness + curiosity + penalty };
  });
}

/** GRPO advantages: rewards normalised within the group; undefined for a zero-variance group (filtered). */
export function grpoAdvantages(rewards: number[], eps = 1e-6): number[] | undefined {
  const mu = rewards.reduce((a, b) => a + b, 0) / rewards.length;
  const variance = rewards.reduce((a, r) => a + (r - mu) ** 2, 0) / rewards.length;
  if (variance < 1e-12) return undefined;
  const sd = Math.sqrt(variance);
  return rewards.map((r) => (r - mu) / (sd + eps));
}
