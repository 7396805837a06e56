import { Graph } from '../onnx/ir.js';
import type { TextConfig } from '../config.js';
import {
  applyRotary, castFloat, inverseFrequencies, linear, maskToBias, reshape, rmsNorm, swiglu, transpose, unsqueeze,
} from './layers.js';

/** Which position stream (0 t, 1 h, 2 w) rotates each of the head_dim/2 frequencies. */
export function mropeStreams(c: TextConfig): number[] {
  const half = c.head_dim / 2;
  const [t, h, w] = c.mrope_section;
  if (t + h + w !== half) throw new Error(`mrope_section ${c.mrope_section} must sum to head_dim/2 = ${half}`);
  if (c.mrope_interleaved) return Array.from({ length: half }, (_, i) => (i % 3 === 1 && i < 3 * h ? 1 : i % 3 === 2 && i < 3 * w ? 2 : 0));
  return Array.from({ length: half }, (_, i) => (i < t ? 0 : i < t + h ? 1 : 2));
}

/**
 * M-RoPE cos/sin [B,S,1,D] from position_ids [3,B,S]: frequency i rotates by the t, h or w position
 * depending on which mrope_section it falls in, duplicated over both halves (rotate_half layout).
 */
function mropeCosSin(g: Graph, positionIds: string, c: TextConfig): [string, string] {
  const half = c.head_dim / 2;
  const invFreq = g.float(inverseFrequencies(c.head_dim, c.rope_theta));
  const pos = unsqueeze(g, castFloat(g, positionIds), [-1]); // [3,B,S,1]
  const freqs = g.op('Mul', [pos, invFreq]); // [3,B,S,half]
  const streams = mropeStreams(c);
  const select = new Array<number>(3 * half).fill(0);
  streams.forEach((stream, i) => (select[stream * half + i] = 1));
  const picked = g.op('ReduceSum', [g.op('Mul', [freqs, g.float(select, [3, 1, 1, half])]), g.int64([0])], { keepdims: { i: 0 } });
  const emb = unsqueeze(g, g.op('Concat', [picked, picked], { axis: { i: -1 } }), [2]); // [B,S,1,D]
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

/** How attention reads and extends the KV cache: explicit concat (standard export) or a pooled cache read in place. */
export type AttentionCore =
  | { kind: 'standard'; bias: string; pastKey: string; pastValue: string }
  | { kind: 'full'; bias: string }
  | { kind: 'pool'; pastBias: string; newBias: string; pastKey: string; pastValue: string };

/**
 * Grouped-query self-attention with M-RoPE. Projections and rotary are shared; the core either
 * concatenates past and new keys (the layout transformers.js feeds), or reads a preallocated
 * pooled cache as a zero-copy input and returns only the new keys/values (the engine writes them
 * into the pool). Returns the attention output and the present (standard) or new (pool) key/value.
 */
function selfAttention(
  g: Graph, x: string, prefix: string, c: TextConfig, cos: string, sin: string, core: AttentionCore,
): { out: string; presentKey: string; presentValue: string } {
  const { hidden_size: h, num_attention_heads: nh, num_key_value_heads: nkv, head_dim: d } = c;
  const split = (y: string, n: number) => reshape(g, y, [0, 0, n, d]); // [B,S,n,D]
  const q = applyRotary(g, split(linear(g, x, `${prefix}.q_proj`, h, nh * d, true), nh), cos, sin, d);
  const k = applyRotary(g, split(linear(g, x, `${prefix}.k_proj`, h, nkv * d, true), nkv), cos, sin, d);
  const v = linear(g, x, `${prefix}.v_proj`, h, nkv * d, true);
  let ctx: string;
  let presentKey: string;
  let presentValue: string;
  const heads = (y: string) => transpose(g, y, [0, 2, 1, 3]); // [B,n,S,D]
  const scale = g.scalarFloat(1 / Math.sqrt(d));
  if (core.kind === 'pool') {
    // Scores over the pooled past (read in place, masked beyond each row's length) and over the new
    // tokens (causal), softmaxed together; the pool itself is never concatenated or copied. The G
    // query heads of a KV head form the rows of one matrix ([B,kvH,G*S,D]), so each key/value
    // block is read once per KV head: decode over a batch is bound by these reads.
    const newKey = heads(k);
    const newValue = heads(split(v, nkv));
    const qRows = reshape(g, g.op('Mul', [heads(q), scale]), [0, nkv, -1, d]); // [B,kvH,G*S,D]
    const rowsOver = (keys: string) => g.op('MatMul', [qRows, transpose(g, keys, [0, 1, 3, 2])]);
    const past = g.op('Add', [rowsOver(core.pastKey), core.pastBias]); // [B,kvH,G*S,cap]
    const fresh = g.op('Add', [rowsOver(newKey), core.newBias]); // [B,kvH,G*S,S]
    const probs = g.op('Softmax', [g.op('Concat', [past, fresh], { axis: { i: -1 } })], { axis: { i: -1 } });
    const cap = g.op('Shape', [core.pastKey], { start: { i: 2 }, end: { i: 3 } });
    const pPast = g.op('Slice', [probs, g.int64([0]), cap, g.int64([-1])]);
    const pNew = g.op('Slice', [probs, cap, g.int64([2 ** 31]), g.int64([-1])]);
    ctx = g.op('Add', [g.op('MatMul', [pPast, core.pastValue]), g.op('MatMul', [pNew, newValue])]); // [B,kvH,G*S,D]
    presentKey = newKey;
    presentValue = newValue;
  } else {
    const qGrouped = reshape(g, heads(q), [0, nkv, nh / nkv, -1, d]); // [B,kvH,G,S,D]
    presentKey = core.kind === 'full' ? heads(k) : g.op('Concat', [core.pastKey, heads(k)], { axis: { i: 2 } });
    presentValue = core.kind === 'full' ? heads(split(v, nkv)) : g.op('Concat', [core.pastValue, heads(split(v, nkv))], { axis: { i: 2 } });
    // q·k over the [B,kvH,T,D] keys; the transpose fuses into the MatMul (no copy of the block).
    const scores = g.op('Mul', [g.op('MatMul', [qGrouped, transpose(g, unsqueeze(g, presentKey, [2]), [0, 1, 2, 4, 3])]), scale]);
    const probs = g.op('Softmax', [g.op('Add', [scores, core.bias])], { axis: { i: -1 } });
    ctx = g.op('MatMul', [probs, unsqueeze(g, presentValue, [2])]); // [B,kvH,G,S,D]
  }
  const merged = reshape(g, transpose(g, reshape(g, ctx, [0, nh, -1, d]), [0, 2, 1, 3]), [0, 0, nh * d]);
  return { out: linear(g, merged, `${prefix}.o_proj`, nh * d, h, false), presentKey, presentValue };
}

/** Row b's hidden state at position index[b]: x [B,S,H], index [B] -> [B,1,H]. */
function gatherRows(g: Graph, x: string, index: string, h: number): string {
  const shape = g.op('Shape', [x]);
  const batch = g.op('Slice', [shape, g.int64([0]), g.int64([1])]);
  const seqLen = g.op('Slice', [shape, g.int64([1]), g.int64([2])]);
  const rowStart = g.op('Mul', [g.op('Range', [g.scalarInt64(0), g.op('Squeeze', [batch, g.int64([0])]), g.scalarInt64(1)]), seqLen]);
  const flat = g.op('Gather', [reshape(g, x, [-1, h]), g.op('Add', [rowStart, index])], { axis: { i: 0 } }); // [B,H]
  return unsqueeze(g, flat, [1]);
}

/**
 * The decoder layers and LM head over `embeds`, with one attention core per layer. `tiedHead`
 * reads the LM head as the transposed embedding itself (training a tied model, so one tensor gets
 * both gradients); serving graphs keep `lm_head.weight`, which a conversion fills from the embedding.
 */
function decoderBody(
  g: Graph, c: TextConfig, embeds: string, positionIds: string, cores: (cos: string, sin: string) => AttentionCore[], lastOnly: boolean | { lastIndex: string }, tiedHead = false,
) {
  const [cos, sin] = mropeCosSin(g, positionIds, c);
  const layerCores = cores(cos, sin);
  let x = embeds;
  const presents: { key: string; value: string }[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const attn = selfAttention(g, rmsNorm(g, x, `${p}.input_layernorm`, c.hidden_size, c.rms_norm_eps), `${p}.self_attn`, c, cos, sin, layerCores[i]!);
    x = g.op('Add', [x, attn.out]);
    x = g.op('Add', [x, swiglu(g, rmsNorm(g, x, `${p}.post_attention_layernorm`, c.hidden_size, c.rms_norm_eps), `${p}.mlp`, c.hidden_size, c.intermediate_size, false)]);
    presents.push({ key: attn.presentKey, value: attn.presentValue });
  }
  if (lastOnly === true) x = g.op('Slice', [x, g.int64([-1]), g.int64([2 ** 31]), g.int64([1])]);
  else if (lastOnly) x = gatherRows(g, x, lastOnly.lastIndex, c.hidden_size);
  const normed = rmsNorm(g, x, 'model.norm', c.hidden_size, c.rms_norm_eps);
  const logits = tiedHead
    ? g.op('MatMul', [normed, transpose(g, g.param('model.embed_tokens.weight', [c.vocab_size, c.hidden_size]), [1, 0])])
    : linear(g, normed, 'lm_head', c.hidden_size, c.vocab_size, false);
  return { logits, presents };
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
  const bias = attentionBias(g, embeds, attentionMask);
  const { logits, presents } = decoderBody(g, c, embeds, positionIds, () => past.map((p) => ({ kind: 'standard' as const, bias, ...p })), false);
  g.output(logits, 'logits', ft, ['batch_size', 'sequence_length', c.vocab_size]);
  const outShape = ['batch_size', c.num_key_value_heads, 'total_sequence_length', c.head_dim];
  presents.forEach((p, i) => {
    g.output(p.key, `present.${i}.key`, ft, outShape);
    g.output(p.value, `present.${i}.value`, ft, outShape);
  });
  return g;
}

/**
 * decoder_kvpool.onnx, the engine's fast variant for models it exports. The KV cache is a
 * preallocated pool [B, kvH, capacity, D] per layer, passed as an input (onnxruntime-node does not
 * copy inputs); each row b has past_lengths[b] valid positions. The graph returns only the new
 * tokens' keys/values [B, kvH, S, D], which the engine writes into the pool at each row's own
 * length, so a step copies no cache. (GroupQueryAttention's shared past/present buffer was
 * measured to cost time proportional to the whole buffer from Node: preallocated outputs are
 * copied back, at ~0.3-0.5 GB/s.) Logits are returned for each row's position last_index[b].
 */
export function buildKvPoolDecoderGraph(c: TextConfig): Graph {
  const g = new Graph('decoder_kvpool', 'float32');
  const embeds = g.input('inputs_embeds', 'float32', ['batch_size', 'sequence_length', c.hidden_size]);
  const positionIds = g.input('position_ids', 'int64', [3, 'batch_size', 'sequence_length']);
  const pastLengths = g.input('past_lengths', 'int64', ['batch_size']);
  // Rows of a batched prefill have different lengths: each is padded at its end, and its logits are
  // read at its last real token. Padding comes after every real token, so no real query sees it.
  const lastIndex = g.input('last_index', 'int64', ['batch_size']);
  const kvShape = ['batch_size', c.num_key_value_heads, 'capacity', c.head_dim];
  const past = Array.from({ length: c.num_hidden_layers }, (_, i) => ({
    pastKey: g.input(`past_key_values.${i}.key`, 'float32', kvShape),
    pastValue: g.input(`past_key_values.${i}.value`, 'float32', kvShape),
  }));
  const one = g.scalarInt64(1);
  const squeeze0 = (x: string) => g.op('Squeeze', [x, g.int64([0])]);
  const capacity = squeeze0(g.op('Shape', [past[0]!.pastKey], { start: { i: 2 }, end: { i: 3 } }));
  const seqLen = squeeze0(g.op('Shape', [embeds], { start: { i: 1 }, end: { i: 2 } }));
  const slotPos = g.op('Range', [g.scalarInt64(0), capacity, one]);
  const valid = g.op('Less', [unsqueeze(g, slotPos, [0]), unsqueeze(g, pastLengths, [1])]); // [B,cap]
  const pastBias = unsqueeze(g, maskToBias(g, valid), [1, 2]); // [B,1,1,cap]
  const newPos = g.op('Range', [g.scalarInt64(0), seqLen, one]);
  const causal = g.op('LessOrEqual', [unsqueeze(g, newPos, [0]), unsqueeze(g, newPos, [1])]); // [S,S]
  // Query rows are (group, position) pairs, g*S + i: the causal mask repeats once per group.
  const groups = c.num_attention_heads / c.num_key_value_heads;
  const newBias = g.op('Tile', [maskToBias(g, causal), g.int64([groups, 1])]); // [G*S,S]
  const { logits, presents } = decoderBody(g, c, embeds, positionIds, () => past.map((p) => ({ kind: 'pool' as const, pastBias, newBias, ...p })), { lastIndex });
  g.output(logits, 'logits', 'float32', ['batch_size', 1, c.vocab_size]);
  const newShape = ['batch_size', c.num_key_value_heads, 'sequence_length', c.head_dim];
  presents.forEach((p, i) => {
    g.output(p.key, `new_key.${i}`, 'float32', newShape);
    g.output(p.value, `new_value.${i}`, 'float32', newShape);
  });
  return g;
}

/**
 * Logits [B,S,V] of a whole sequence with no cache (the training step's forward): the same layers
 * as the served decoder, attention over the sequence itself only; a tied model's LM head is the
 * embedding (one parameter, as transformers trains it).
 */
export function fullSequenceLogits(g: Graph, c: TextConfig, embeds: string, attentionMask: string, positionIds: string): string {
  const bias = attentionBias(g, embeds, attentionMask);
  const cores = () => Array.from({ length: c.num_hidden_layers }, () => ({ kind: 'full' as const, bias }));
  return decoderBody(g, c, embeds, positionIds, cores, false, c.tie_word_embeddings ?? false).logits;
}

/** embed_tokens.onnx: input_ids [B,S] -> inputs_embeds [B,S,H]. */
export function buildEmbedGraph(c: TextConfig, floatType: 'float32' | 'float64' = 'float32'): Graph {
  const g = new Graph('embed_tokens', floatType);
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const out = g.op('Gather', [g.param('model.embed_tokens.weight', [c.vocab_size, c.hidden_size]), ids], { axis: { i: 0 } });
  g.output(out, 'inputs_embeds', floatType, ['batch_size', 'sequence_length', c.hidden_size]);
  return g;
}
