/** Model configuration: the subset of Qwen2.5-VL's config.json our graphs are built from. */
export interface TextConfig {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  intermediate_size: number;
  vocab_size: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** M-RoPE: how many of the head_dim/2 frequencies rotate by the t, h and w positions. */
  mrope_section: [number, number, number];
  /**
   * Qwen3-VL's interleaved M-RoPE: frequency i rotates by h when i % 3 == 1, by w when i % 3 == 2
   * (each within 3 x its section), else by t, so every axis spans high to low frequencies. In the
   * contiguous layout w gets only the lowest ones, and a tiny model barely tells columns apart.
   */
  mrope_interleaved?: boolean;
  max_position_embeddings: number;
  /** lm_head shares the embedding matrix (Qwen2.5-VL-3B); absent/false: its own weights. */
  tie_word_embeddings?: boolean;
}

export interface VisionConfig {
  hidden_size: number;
  depth: number;
  num_heads: number;
  intermediate_size: number;
  in_chans: number;
  patch_size: number;
  temporal_patch_size: number;
  spatial_merge_size: number;
  out_hidden_size: number;
  /** Window attention span in pixels (Qwen2.5-VL: 112); blocks in fullatt_block_indexes attend globally. */
  window_size: number;
  fullatt_block_indexes: number[];
  rms_norm_eps: number;
  /**
   * Not in Qwen2.5-VL (absent or 0 there): K > 0 adds a learned projection of 4K Fourier features
   * of each patch's frame-relative position to the patch embeddings. The project's tiny models
   * use it: rotary attention is relative, so absolute positions (which a crop box needs) otherwise
   * have to be learned indirectly, which a small model trained briefly on a CPU is unlikely to do.
   */
  coordinate_frequencies?: number;
  /**
   * Not in Qwen2.5-VL either: K > 0 adds a learned projection of 2K Fourier features of each
   * patch's position in its video's time axis, so the model can name the frame a detail is in
   * (all 0 for an image: image features do not depend on it).
   */
  temporal_frequencies?: number;
  /**
   * Qwen2.5-VL: temporal M-RoPE positions advance tokens_per_second x second_per_grid_ts per temporal
   * patch of a video. Absent in the project's own models, whose videos advance one position per patch.
   */
  tokens_per_second?: number;
  /**
   * Not in Qwen2.5-VL's config: the vision graph encodes one visual input per run and computes
   * attention per window and per frame (memory linear in the patches), instead of over all
   * patches with a dense mask. Set for imported checkpoints, whose images reach 20,000 patches.
   */
  per_input_attention?: boolean;
}

export interface ProcessorConfig {
  min_pixels: number;
  max_pixels: number;
  patch_size: number;
  merge_size: number;
  temporal_patch_size: number;
  image_mean: [number, number, number];
  image_std: [number, number, number];
  /**
   * How images are resized: 'pil' as transformers' Qwen2VLImageProcessor (PIL bicubic with
   * antialias, Python's rounding), for checkpoints imported from Hugging Face; absent: as
   * transformers.js in Node (sharp's bicubic), the processor the project's own models trained with.
   */
  resize_backend?: 'pil';
}

export interface SpecialTokenIds {
  image_token_id: number;
  video_token_id: number;
  vision_start_token_id: number;
  vision_end_token_id: number;
  eos_token_ids: number[];
  pad_token_id: number;
}

export interface ModelConfig extends SpecialTokenIds {
  text: TextConfig;
  vision: VisionConfig;
  processor: ProcessorConfig;
  /**
   * 'reference': prompt pixel reasoning as the Pixel-Reasoner reference does (tools/definitions.ts),
   * for checkpoints imported from Hugging Face; absent: the project's own prompt.
   */
  pixel_reasoning_prompt?: 'reference';
}

export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export function patchDim(v: VisionConfig): number {
  return v.in_chans * v.temporal_patch_size * v.patch_size * v.patch_size;
}

/** config.json in the layout transformers.js reads for `qwen2_5_vl`. */
export function toConfigJson(c: ModelConfig): Record<string, unknown> {
  const t = c.text;
  return {
    architectures: ['Qwen2_5_VLForConditionalGeneration'],
    model_type: 'qwen2_5_vl',
    ...(c.pixel_reasoning_prompt ? { pixel_reasoning_prompt: c.pixel_reasoning_prompt } : {}),
    image_token_id: c.image_token_id,
    video_token_id: c.video_token_id,
    vision_start_token_id: c.vision_start_token_id,
    vision_end_token_id: c.vision_end_token_id,
    eos_token_id: c.eos_token_ids,
    pad_token_id: c.pad_token_id,
    hidden_size: t.hidden_size,
    vocab_size: t.vocab_size,
    tie_word_embeddings: t.tie_word_embeddings ?? false,
    text_config: {
      model_type: 'qwen2_5_vl_text',
      hidden_size: t.hidden_size,
      num_hidden_layers: t.num_hidden_layers,
      num_attention_heads: t.num_attention_heads,
      num_key_value_heads: t.num_key_value_heads,
      head_dim: t.head_dim,
      intermediate_size: t.intermediate_size,
      vocab_size: t.vocab_size,
      rms_norm_eps: t.rms_norm_eps,
      rope_theta: t.rope_theta,
      rope_scaling: { type: 'mrope', rope_type: 'default', mrope_section: t.mrope_section, ...(t.mrope_interleaved ? { mrope_interleaved: true } : {}) },
      max_position_embeddings: t.max_position_embeddings,
      hidden_act: 'silu',
      tie_word_embeddings: t.tie_word_embeddings ?? false,
      eos_token_id: c.eos_token_ids,
    },
    vision_config: { model_type: 'qwen2_5_vl', hidden_act: 'silu', ...c.vision },
  };
}

/** A config.json that is not a Qwen2.5-VL: said plainly, with what it is, before any weight is read. */
export class ConfigError extends Error {}

function req<T>(v: T | undefined, what: string): T {
  if (v === undefined || v === null) throw new ConfigError(`config.json: missing ${what}`);
  return v;
}

const OTHER_ARCHITECTURES: Record<string, string> = {
  qwen2_vl: 'Qwen2-VL',
  qwen3_vl: 'Qwen3-VL',
  qwen3_vl_moe: 'Qwen3-VL-MoE',
  qwen2_5_omni: 'Qwen2.5-Omni',
};

/**
 * Checks config.json's model_type. Our own exports and the Hub's Qwen2.5-VL both say qwen2_5_vl;
 * another architecture fails here with its name rather than later with a missing field.
 */
function checkArchitecture(json: Record<string, any>): void {
  const type = json.model_type as string | undefined;
  if (type === 'qwen2_5_vl') return;
  const known = type ? OTHER_ARCHITECTURES[type] : undefined;
  const what = known ? `${known} (model_type "${type}")` : type ? `model_type "${type}"` : 'no model_type';
  throw new ConfigError(`config.json: ${what} is not supported; this server serves Qwen2.5-VL checkpoints (model_type "qwen2_5_vl")`);
}

/**
 * Reads config.json + preprocessor_config.json into a ModelConfig. Three layouts carry the same
 * fields: the Hub's flat legacy one (text fields at the top level, `rope_scaling` with
 * `mrope_section`), transformers 5.x's (nested `text_config` with `rope_parameters`), and our own
 * exports (nested `text_config` with `rope_scaling`). The nested value wins where both exist.
 * `generation` (generation_config.json) supplies the eos ids when present, as transformers' generate uses it.
 */
export function fromConfigJson(
  json: Record<string, any>, pre: Record<string, any>, generation: Record<string, any> = {}, defaults: 'project' | 'transformers' = 'project',
): ModelConfig {
  checkArchitecture(json);
  const quant = json.quantization_config?.quant_method ?? json.text_config?.quantization_config?.quant_method;
  if (quant) throw new ConfigError(`config.json: a ${String(quant).toUpperCase()}-quantized checkpoint is not supported; use the BF16/FP16/FP32 original (--dtype q8 or q4 quantizes it here)`);
  const t: Record<string, any> = json.text_config ?? json;
  const v = req(json.vision_config, 'vision_config') as Record<string, any>;
  const rope = (key: string) => t.rope_parameters?.[key] ?? t.rope_scaling?.[key] ?? json.rope_parameters?.[key] ?? json.rope_scaling?.[key];
  const num = (value: unknown, what: string): number => {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new ConfigError(`config.json: ${what} must be a number, got ${JSON.stringify(value ?? null)}`);
    return value;
  };
  const eos = generation.eos_token_id ?? json.eos_token_id ?? t.eos_token_id;
  const eosIds = (Array.isArray(eos) ? eos : [eos]).filter((id) => typeof id === 'number');
  if (eosIds.length === 0) throw new ConfigError('config.json: missing eos_token_id (also absent from generation_config.json)');
  const hidden = num(t.hidden_size, 'hidden_size');
  const heads = num(t.num_attention_heads, 'num_attention_heads');
  const mropeSection = req(rope('mrope_section'), 'text_config.rope_scaling.mrope_section (or rope_parameters.mrope_section)') as [number, number, number];
  const config: ModelConfig = {
    ...(json.pixel_reasoning_prompt === 'reference' ? { pixel_reasoning_prompt: 'reference' as const } : {}),
    image_token_id: num(json.image_token_id, 'image_token_id'),
    video_token_id: num(json.video_token_id, 'video_token_id'),
    vision_start_token_id: num(json.vision_start_token_id, 'vision_start_token_id'),
    vision_end_token_id: json.vision_end_token_id ?? json.vision_start_token_id + 1,
    eos_token_ids: eosIds,
    pad_token_id: generation.pad_token_id ?? json.pad_token_id ?? eosIds[eosIds.length - 1]!,
    text: {
      hidden_size: hidden,
      num_hidden_layers: num(t.num_hidden_layers, 'num_hidden_layers'),
      num_attention_heads: heads,
      num_key_value_heads: num(t.num_key_value_heads ?? heads, 'num_key_value_heads'),
      head_dim: t.head_dim ?? hidden / heads,
      intermediate_size: num(t.intermediate_size, 'intermediate_size'),
      vocab_size: num(t.vocab_size ?? json.vocab_size, 'vocab_size'),
      rms_norm_eps: t.rms_norm_eps ?? 1e-6,
      rope_theta: rope('rope_theta') ?? t.rope_theta ?? json.rope_theta ?? 1e6,
      mrope_section: mropeSection,
      ...(rope('mrope_interleaved') ? { mrope_interleaved: true } : {}),
      max_position_embeddings: t.max_position_embeddings ?? 32768,
      // transformers ties when either level says so.
      ...(t.tie_word_embeddings || json.tie_word_embeddings ? { tie_word_embeddings: true } : {}),
    },
    vision: {
      hidden_size: num(v.hidden_size, 'vision_config.hidden_size'),
      depth: num(v.depth, 'vision_config.depth'),
      num_heads: num(v.num_heads, 'vision_config.num_heads'),
      intermediate_size: num(v.intermediate_size, 'vision_config.intermediate_size'),
      in_chans: v.in_chans ?? v.in_channels ?? 3,
      patch_size: v.patch_size ?? 14,
      temporal_patch_size: v.temporal_patch_size ?? 2,
      spatial_merge_size: v.spatial_merge_size ?? 2,
      out_hidden_size: v.out_hidden_size ?? hidden,
      window_size: v.window_size ?? 112,
      // A snapshot's missing fields take transformers' Qwen2.5-VL defaults; the project's own configs write them all.
      fullatt_block_indexes: v.fullatt_block_indexes ?? (defaults === 'transformers' ? [7, 15, 23, 31].filter((i) => i < v.depth) : []),
      rms_norm_eps: v.rms_norm_eps ?? 1e-6,
      coordinate_frequencies: v.coordinate_frequencies ?? 0,
      temporal_frequencies: v.temporal_frequencies ?? 0,
      ...(v.tokens_per_second !== undefined || defaults === 'transformers' ? { tokens_per_second: v.tokens_per_second ?? 4 } : {}),
      ...(v.per_input_attention ? { per_input_attention: true } : {}),
    },
    processor: {
      min_pixels: pre.min_pixels ?? pre.size?.shortest_edge ?? 56 * 56,
      max_pixels: pre.max_pixels ?? pre.size?.longest_edge ?? 28 * 28 * 1280,
      patch_size: pre.patch_size ?? 14,
      merge_size: pre.merge_size ?? 2,
      temporal_patch_size: pre.temporal_patch_size ?? 2,
      image_mean: pre.image_mean ?? CLIP_MEAN,
      image_std: pre.image_std ?? CLIP_STD,
      ...(pre.resize_backend === 'pil' ? { resize_backend: 'pil' as const } : {}),
    },
  };
  checkConsistency(config);
  return config;
}

/** Dimension rules the graphs rely on, checked up front so a bad config names its field. */
function checkConsistency(c: ModelConfig): void {
  const t = c.text;
  const v = c.vision;
  const fail = (msg: string) => { throw new ConfigError(`config.json: ${msg}`); };
  if (t.num_attention_heads % t.num_key_value_heads !== 0) fail(`num_attention_heads ${t.num_attention_heads} is not a multiple of num_key_value_heads ${t.num_key_value_heads}`);
  if (t.mrope_section.length !== 3 || t.mrope_section.reduce((a, b) => a + b, 0) * 2 !== t.head_dim) {
    fail(`mrope_section ${JSON.stringify(t.mrope_section)} must have 3 parts summing to head_dim/2 = ${t.head_dim / 2}`);
  }
  if (v.hidden_size % v.num_heads !== 0) fail(`vision_config.hidden_size ${v.hidden_size} is not a multiple of num_heads ${v.num_heads}`);
  if (v.fullatt_block_indexes.some((i) => i < 0 || i >= v.depth)) fail(`vision_config.fullatt_block_indexes ${JSON.stringify(v.fullatt_block_indexes)} out of range for depth ${v.depth}`);
  if (c.processor.patch_size !== v.patch_size || c.processor.merge_size !== v.spatial_merge_size || c.processor.temporal_patch_size !== v.temporal_patch_size) {
    fail('preprocessor_config.json patch_size/merge_size/temporal_patch_size differ from vision_config');
  }
}

/** preprocessor_config.json as Qwen2VLImageProcessor / transformers.js read it. */
export function toPreprocessorJson(p: ProcessorConfig): Record<string, unknown> {
  return {
    image_processor_type: 'Qwen2VLImageProcessor',
    processor_class: 'Qwen2_5_VLProcessor',
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    rescale_factor: 1 / 255,
    resample: 3,
    image_mean: p.image_mean,
    image_std: p.image_std,
    min_pixels: p.min_pixels,
    max_pixels: p.max_pixels,
    patch_size: p.patch_size,
    merge_size: p.merge_size,
    temporal_patch_size: p.temporal_patch_size,
    ...(p.resize_backend ? { resize_backend: p.resize_backend } : {}),
  };
}
