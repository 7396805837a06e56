import { Graph } from '../onnx/ir.js';
import type { TextConfig } from '../config.js';
import {
  applyRotary, castFloat, inverseFrequencies, linear, maskToBias, reshape, rmsNorm, swiglu, transpose, unsqueeze,
} from './layers.js';

/**
 * M-RoPE cos/sin [B,1,S,D] from position_ids [3,B,S]: frequency i rotates by the t, h or w position
 * depending on which mrope_section it falls in, duplicated over both halves (rotate_half layout).
 */
function mropeCosSin(g: Graph, positionIds: string, c: TextConfig): [string, string] {
  const half = c.head_dim / 2;
  const invFreq = g.float(inverseFrequencies(c.head_dim, c.rope_theta));
  const pos = unsqueeze(g, castFloat(g, positionIds), [-1]); // [3,B,S,1]
  const freqs = g.op('Mul', [pos, invFreq]); // [3,B,S,half]
  const select = new Array<number>(3 * half).fill(0);
  let offset = 0;
  c.mrope_section.forEach((n, stream) => {
    for (let i = offset; i < offset + n; i++) select[stream * half + i] = 1;
    offset += n;
  });
  if (offset !== half) throw new Error(`mrope_section ${c.mrope_section} must sum to head_dim/2 = ${half}`);
  const picked = g.op('ReduceSum', [g.op('Mul', [freqs, g.float(select, [3, 1, 1, half])]), g.int64([0])], { keepdims: { i: 0 } });
  const emb = unsqueeze(g, g.op('Concat', [picked, picked], { axis: { i: -1 } }), [1]); // [B,1,S,D]
  return [g.op('Cos', [emb]), g.op('Sin', [emb])];
}

/** Causal + padding mask as an additive bias [B,1,1,S,T] (T = past + S), for grouped-query scores. */
function attentionBias(g: Graph, inputsEmbeds: string, attentionMask: string): string {
  const seqLen = g.op('Shape', [inputsEmbeds], { start: { i: 1 }, end: { i: 2 } });
  const total = g.op('Shape', [attentionMask], { start: { i: 1 }, end: { i: 2 } });
  const past = g.op('Sub', [total, seqLen]);
  const zero = g.scalarInt64(0);
  const one = g.scalarInt64(1);
  const squeeze = (x: string) => g.op('Squeeze', [x, g.int64([0])]);
  const qPos = g.op('Range', [squeeze(past), squeeze(total), one]);
  const kPos = g.op('Range', [zero, squeeze(total), one]);
  const causal = g.op('LessOrEqual', [unsqueeze(g, kPos, [0]), unsqueeze(g, qPos, [1])]); // [S,T]
  const notPadding = unsqueeze(g, g.op('Cast', [attentionMask], { to: { i: 9 } }), [1, 2]); // [B,1,1,T]
  return unsqueeze(g, maskToBias(g, g.op('And', [causal, notPadding])), [2]); // [B,1,1,S,T]
}

export interface DecoderLayerIO {
  pastKey: string;
  pastValue: string;
}

/**
 * Grouped-query self-attention with an explicit KV concat (the layout transformers.js feeds):
 * returns the attention output and the present key/value [B,kvH,T,D].
 */
function selfAttention(
  g: Graph, x: string, prefix: string, c: TextConfig, cos: string, sin: string, bias: string, io: DecoderLayerIO,
): { out: string; presentKey: string; presentValue: string } {
  const { hidden_size: h, num_attention_heads: nh, num_key_value_heads: nkv, head_dim: d } = c;
  const heads = (y: string, n: number) => transpose(g, reshape(g, y, [0, 0, n, d]), [0, 2, 1, 3]);
  const q = applyRotary(g, heads(linear(g, x, `${prefix}.q_proj`, h, nh * d, true), nh), cos, sin, d);
  const k = applyRotary(g, heads(linear(g, x, `${prefix}.k_proj`, h, nkv * d, true), nkv), cos, sin, d);
  const v = heads(linear(g, x, `${prefix}.v_proj`, h, nkv * d, true), nkv);
  const presentKey = g.op('Concat', [io.pastKey, k], { axis: { i: 2 } });
  const presentValue = g.op('Concat', [io.pastValue, v], { axis: { i: 2 } });
  const qGrouped = reshape(g, q, [0, nkv, nh / nkv, -1, d]); // [B,kvH,G,S,D]
  const kT = unsqueeze(g, transpose(g, presentKey, [0, 1, 3, 2]), [2]); // [B,kvH,1,D,T]
  const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [qGrouped, kT]), g.scalarFloat(1 / Math.sqrt(d))]), bias]);
  const probs = g.op('Softmax', [scores], { axis: { i: -1 } });
  const ctx = g.op('MatMul', [probs, unsqueeze(g, presentValue, [2])]); // [B,kvH,G,S,D]
  const merged = reshape(g, transpose(g, reshape(g, ctx, [0, nh, -1, d]), [0, 2, 1, 3]), [0, 0, nh * d]);
  return { out: linear(g, merged, `${prefix}.o_proj`, nh * d, h, false), presentKey, presentValue };
}

/**
 * decoder_model_merged.onnx: inputs_embeds [B,S,H], attention_mask [B,T], position_ids [3,B,S],
 * past_key_values.{i}.key/value [B,kvH,P,D] -> logits [B,S,V], present.{i}.key/value [B,kvH,T,D].
 */
export function buildDecoderGraph(c: TextConfig, floatType: 'float32' | 'float64' = 'float32'): Graph {
  const g = new Graph('decoder_model_merged', floatType);
  const ft = floatType;
  const embeds = g.input('inputs_embeds', ft, ['batch_size', 'sequence_length', c.hidden_size]);
  const attentionMask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', 'int64', [3, 'batch_size', 'sequence_length']);
  const kvShape = ['batch_size', c.num_key_value_heads, 'past_sequence_length', c.head_dim];
  const past = Array.from({ length: c.num_hidden_layers }, (_, i) => ({
    pastKey: g.input(`past_key_values.${i}.key`, ft, kvShape),
    pastValue: g.input(`past_key_values.${i}.value`, ft, kvShape),
  }));
  const [cos, sin] = mropeCosSin(g, positionIds, c);
  const bias = attentionBias(g, embeds, attentionMask);
  let x = embeds;
  const presents: { key: string; value: string }[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const attn = selfAttention(g, rmsNorm(g, x, `${p}.input_layernorm`, c.hidden_size, c.rms_norm_eps), `${p}.self_attn`, c, cos, sin, bias, past[i]!);
    x = g.op('Add', [x, attn.out]);
    x = g.op('Add', [x, swiglu(g, rmsNorm(g, x, `${p}.post_attention_layernorm`, c.hidden_size, c.rms_norm_eps), `${p}.mlp`, c.hidden_size, c.intermediate_size, false)]);
    presents.push({ key: attn.presentKey, value: attn.presentValue });
  }
  const logits = linear(g, rmsNorm(g, x, 'model.norm', c.hidden_size, c.rms_norm_eps), 'lm_head', c.hidden_size, c.vocab_size, false);
  g.output(logits, 'logits', ft, ['batch_size', 'sequence_length', c.vocab_size]);
  const outShape = ['batch_size', c.num_key_value_heads, 'total_sequence_length', c.head_dim];
  presents.forEach((p, i) => {
    g.output(p.key, `present.${i}.key`, ft, outShape);
    g.output(p.value, `present.${i}.value`, ft, outShape);
  });
  return g;
}

/** embed_tokens.onnx: input_ids [B,S] -> inputs_embeds [B,S,H]. */
export function buildEmbedGraph(c: TextConfig, floatType: 'float32' | 'float64' = 'float32'): Graph {
  const g = new Graph('embed_tokens', floatType);
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const out = g.op('Gather', [g.param('model.embed_tokens.weight', [c.vocab_size, c.hidden_size]), ids], { axis: { i: 0 } });
  g.output(out, 'inputs_embeds', floatType, ['batch_size', 'sequence_length', c.hidden_size]);
  return g;
}
