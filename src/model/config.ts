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
}

export interface ProcessorConfig {
  min_pixels: number;
  max_pixels: number;
  patch_size: number;
  merge_size: number;
  temporal_patch_size: number;
  image_mean: [number, number, number];
  image_std: [number, number, number];
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
    image_token_id: c.image_token_id,
    video_token_id: c.video_token_id,
    vision_start_token_id: c.vision_start_token_id,
    vision_end_token_id: c.vision_end_token_id,
    eos_token_id: c.eos_token_ids,
    pad_token_id: c.pad_token_id,
    hidden_size: t.hidden_size,
    vocab_size: t.vocab_size,
    tie_word_embeddings: false,
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
      tie_word_embeddings: false,
      eos_token_id: c.eos_token_ids,
    },
    vision_config: { model_type: 'qwen2_5_vl', hidden_act: 'silu', ...c.vision },
  };
}

function req<T>(v: T | undefined, what: string): T {
  if (v === undefined || v === null) throw new Error(`config.json: missing ${what}`);
  return v;
}

/** Reads config.json + preprocessor_config.json back into a ModelConfig. */
export function fromConfigJson(json: Record<string, any>, pre: Record<string, any>): ModelConfig {
  const t = req(json.text_config, 'text_config');
  const v = req(json.vision_config, 'vision_config');
  const eos = json.eos_token_id ?? t.eos_token_id;
  // A config.json holds rope_scaling in text_config or at the top level; text_config's wins.
  const ropeScaling = (key: string) => t.rope_scaling?.[key] ?? json.rope_scaling?.[key];
  return {
    image_token_id: req(json.image_token_id, 'image_token_id'),
    video_token_id: req(json.video_token_id, 'video_token_id'),
    vision_start_token_id: req(json.vision_start_token_id, 'vision_start_token_id'),
    vision_end_token_id: json.vision_end_token_id ?? json.vision_start_token_id + 1,
    eos_token_ids: Array.isArray(eos) ? eos : [eos],
    pad_token_id: json.pad_token_id ?? (Array.isArray(eos) ? eos[0] : eos),
    text: {
      hidden_size: t.hidden_size,
      num_hidden_layers: t.num_hidden_layers,
      num_attention_heads: t.num_attention_heads,
      num_key_value_heads: t.num_key_value_heads,
      head_dim: t.head_dim ?? t.hidden_size / t.num_attention_heads,
      intermediate_size: t.intermediate_size,
      vocab_size: t.vocab_size,
      rms_norm_eps: t.rms_norm_eps ?? 1e-6,
      rope_theta: t.rope_theta ?? 1e6,
      mrope_section: req(ropeScaling('mrope_section'), 'text_config.rope_scaling.mrope_section'),
      ...(ropeScaling('mrope_interleaved') ? { mrope_interleaved: true } : {}),
      max_position_embeddings: t.max_position_embeddings ?? 32768,
    },
    vision: {
      hidden_size: v.hidden_size,
      depth: v.depth,
      num_heads: v.num_heads,
      intermediate_size: v.intermediate_size,
      in_chans: v.in_chans ?? 3,
      patch_size: v.patch_size ?? 14,
      temporal_patch_size: v.temporal_patch_size ?? 2,
      spatial_merge_size: v.spatial_merge_size ?? 2,
      out_hidden_size: v.out_hidden_size ?? t.hidden_size,
      window_size: v.window_size ?? 112,
      fullatt_block_indexes: v.fullatt_block_indexes ?? [],
      rms_norm_eps: v.rms_norm_eps ?? 1e-6,
      coordinate_frequencies: v.coordinate_frequencies ?? 0,
      temporal_frequencies: v.temporal_frequencies ?? 0,
    },
    processor: {
      min_pixels: pre.min_pixels ?? pre.size?.shortest_edge ?? 56 * 56,
      max_pixels: pre.max_pixels ?? pre.size?.longest_edge ?? 28 * 28 * 1280,
      patch_size: pre.patch_size ?? 14,
      merge_size: pre.merge_size ?? 2,
      temporal_patch_size: pre.temporal_patch_size ?? 2,
      image_mean: pre.image_mean ?? CLIP_MEAN,
      image_std: pre.image_std ?? CLIP_STD,
    },
  };
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
  };
}
