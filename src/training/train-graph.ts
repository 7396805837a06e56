import { fullSequenceLogits } from '../model/architecture/text-decoder.js';
import type { TextConfig } from '../model/config.js';
import { Graph } from '../model/onnx/ir.js';
import { appendBackward } from './autodiff/backward.js';
import { paramsAsInputs } from './autodiff/params-as-inputs.js';

export interface TrainingGraph {
  graph: Graph;
  /** Trainable parameters (graph inputs of the same names), sorted; gradients are outputs `grad.<name>`. */
  params: string[];
}

/**
 * The training step as one graph: the served text decoder's layers over a whole padded batch,
 * token log-probabilities of the labels, the weighted loss -Σ w·log p(label), and its gradient
 * for every text parameter. Weights are per token and already normalised by the caller (SFT: loss
 * mask / tokens in the batch; RL: advantage / tokens), so one graph serves both stages.
 * Visual features come in precomputed (`visual_embeds`, zero at text positions): the vision
 * encoder is frozen during training.
 *
 * Inputs: input_ids, attention_mask, labels [B,S] int64; position_ids [3,B,S]; text_mask [B,S,1]
 * (1 at text tokens, 0 at visual ones); visual_embeds [B,S,H]; loss_weights [B,S].
 * Outputs: loss [], token_logprobs [B,S], optional logits [B,S,V], grad.<param>, optional grad.visual_embeds.
 */
export function buildTrainingGraph(c: TextConfig, opts: { floatType?: 'float32' | 'float64'; logits?: boolean; backward?: boolean; visualGrad?: boolean } = {}): TrainingGraph {
  const ft = opts.floatType ?? 'float32';
  const g = new Graph('training_step', ft);
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'seq']);
  const positionIds = g.input('position_ids', 'int64', [3, 'batch', 'seq']);
  const textMask = g.input('text_mask', ft, ['batch', 'seq', 1]);
  const visual = g.input('visual_embeds', ft, ['batch', 'seq', c.hidden_size]);
  const labels = g.input('labels', 'int64', ['batch', 'seq']);
  const weights = g.input('loss_weights', ft, ['batch', 'seq']);
  const table = g.param('model.embed_tokens.weight', [c.vocab_size, c.hidden_size]);
  const embeds = g.op('Add', [g.op('Mul', [g.op('Gather', [table, ids], { axis: { i: 0 } }), textMask]), visual]);
  const logits = fullSequenceLogits(g, c, embeds, attentionMask, positionIds);
  const logp = g.op('LogSoftmax', [logits], { axis: { i: -1 } });
  const picked = g.op('Squeeze', [g.op('GatherElements', [logp, g.op('Unsqueeze', [labels, g.int64([-1])])], { axis: { i: -1 } }), g.int64([-1])]);
  const loss = g.op('Neg', [g.op('ReduceSum', [g.op('Mul', [picked, weights])], { keepdims: { i: 0 } })]);
  g.output(loss, 'loss', ft, []);
  g.output(picked, 'token_logprobs', ft, ['batch', 'seq']);
  if (opts.logits) g.output(logits, 'logits', ft, ['batch', 'seq', c.vocab_size]);
  const params = paramsAsInputs(g);
  if (opts.backward !== false) {
    // With visualGrad, d loss / d visual_embeds too: the vision tower's VJP continues from it.
    const wrt = opts.visualGrad ? [...params, visual] : params;
    appendBackward(g, loss, wrt).forEach((d, i) => g.output(d, `grad.${wrt[i]}`, ft, g.inputs.find((v) => v.name === wrt[i])!.shape));
  }
  return { graph: g, params };
}
