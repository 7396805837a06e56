import { Rng } from '../util/random.js';

export interface SamplingParams {
  /** 0 means greedy. */
  temperature: number;
  topP: number;
  /** 0 or less disables top-k. */
  topK: number;
  presencePenalty: number;
  frequencyPenalty: number;
  seed?: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0, presencePenalty: 0, frequencyPenalty: 0 };

/** The index of the largest value (the first of equal ones): the greedy token. */
export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** True when sampleToken is the argmax of the logits alone (no temperature, no penalties): a token another thread can pick. */
export function isPlainGreedy(p: SamplingParams): boolean {
  return p.temperature <= 0 && p.presencePenalty === 0 && p.frequencyPenalty === 0;
}

/** OpenAI-style penalties over the tokens generated so far (prompt excluded, as vLLM does). */
function applyPenalties(logits: Float32Array, p: SamplingParams, counts: Map<number, number>): Float32Array {
  if ((p.presencePenalty === 0 && p.frequencyPenalty === 0) || counts.size === 0) return logits;
  const out = logits.slice();
  for (const [id, n] of counts) out[id] = out[id]! - p.presencePenalty - p.frequencyPenalty * n;
  return out;
}

/** Picks the next token: greedy at temperature 0, otherwise temperature + top-k + top-p sampling with the sequence's RNG. */
export function sampleToken(logits: Float32Array, p: SamplingParams, rng: Rng, generatedCounts: Map<number, number>): number {
  const scores = applyPenalties(logits, p, generatedCounts);
  if (p.temperature <= 0) return argmax(scores);
  let order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
  if (p.topK > 0) order = order.slice(0, p.topK);
  const max = scores[order[0]!]!;
  const weights = order.map((i) => Math.exp((scores[i]! - max) / p.temperature));
  const sum = weights.reduce((a, b) => a + b, 0);
  let keep = order.length;
  if (p.topP < 1) {
    let acc = 0;
    for (let k = 0; k < order.length; k++) {
      acc += weights[k]! / sum;
      if (acc >= p.topP) {
        keep = k + 1;
        break;
      }
    }
  }
  const kept = weights.slice(0, keep);
  const keptSum = kept.reduce((a, b) => a + b, 0);
  let r = rng.next() * keptSum;
  for (let k = 0; k < keep; k++) {
    r -= kept[k]!;
    if (r <= 0) return order[k]!;
  }
  return order[keep - 1]!;
}

/** Log-probabilities (log-softmax) of a logits row. */
export function logSoftmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return logits.map((v) => v - lse);
}
