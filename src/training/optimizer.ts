/** Hyperparameters of AdamW with global-norm clipping and a warm-up + cosine learning-rate schedule. */
export interface OptimizerOptions {
  lr: number;
  /** Fraction of lr the cosine decays to. */
  minLrRatio: number;
  warmupSteps: number;
  totalSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip (0 = off). */
  clip: number;
}

export const OPTIMIZER_DEFAULTS: OptimizerOptions = {
  lr: 1e-3, minLrRatio: 0.1, warmupSteps: 10, totalSteps: 100, weightDecay: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, clip: 1,
};

export function learningRate(step: number, o: OptimizerOptions): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
  return o.lr * (o.minLrRatio + (1 - o.minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Moments per parameter; `step` counts updates done (bias correction uses step + 1). */
export interface AdamState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export function newAdamState(params: Map<string, Float32Array>): AdamState {
  const zeros = () => new Map([...params].map(([k, p]) => [k, new Float32Array(p.length)]));
  return { step: 0, m: zeros(), v: zeros() };
}

/** Decay applies to matrices only: norms, biases and embeddings are left alone (the usual choice). */
const decays = (name: string) => !/(norm|bias)/.test(name) && !name.includes('embed_tokens');

/**
 * One AdamW update in place on fp32 master weights. Returns the gradient norm before clipping and
 * the learning rate used.
 */
export function adamwStep(params: Map<string, Float32Array>, grads: Map<string, Float32Array>, state: AdamState, o: OptimizerOptions): { gradNorm: number; lr: number } {
  let sq = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const gradNorm = Math.sqrt(sq);
  const clipScale = o.clip > 0 && gradNorm > o.clip ? o.clip / gradNorm : 1;
  const lr = learningRate(state.step, o);
  const t = state.step + 1;
  const c1 = 1 - o.beta1 ** t;
  const c2 = 1 - o.beta2 ** t;
  for (const [name, p] of params) {
    const g = grads.get(name);
    if (!g) continue;
    const m = state.m.get(name)!;
    const v = state.v.get(name)!;
    const wd = decays(name) ? lr * o.weightDecay : 0;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]! * clipScale;
      m[i] = o.beta1 * m[i]! + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i]! + (1 - o.beta2) * gi * gi;
      p[i] = p[i]! - wd * p[i]! - (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + o.eps);
    }
  }
  state.step = t;
  return { gradNorm, lr };
}
