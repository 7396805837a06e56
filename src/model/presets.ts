import { CLIP_MEAN, CLIP_STD, type ModelConfig, type SpecialTokenIds } from './config.js';

export type PresetName = 'tiny' | 'micro';

/**
 * Architecture sizes. `tiny` is the default served model: small enough to train on a 2-core CPU,
 * with an image budget (max_pixels) low enough that small details need a zoom.
 * `micro` is for fast tests.
 */
export function presetConfig(name: PresetName, ids: SpecialTokenIds, vocabSize: number): ModelConfig {
  const micro = name === 'micro';
  return {
    ...ids,
    text: {
      hidden_size: micro ? 64 : 128,
      num_hidden_layers: micro ? 2 : 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: micro ? 16 : 32,
      intermediate_size: micro ? 128 : 384,
      vocab_size: vocabSize,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      mrope_section: micro ? [2, 3, 3] : [6, 5, 5],
      // Interleaved (Qwen3-VL's layout): with contiguous sections the column gets only the lowest
      // rotary frequencies, and the tiny model learnt rows 39/40 but columns 17/40 of its locate boxes.
      ...(micro ? {} : { mrope_interleaved: true }),
      max_position_embeddings: 4096,
    },
    vision: {
      hidden_size: micro ? 32 : 64,
      depth: 2,
      num_heads: micro ? 2 : 4,
      intermediate_size: micro ? 64 : 128,
      in_chans: 3,
      patch_size: 14,
      temporal_patch_size: 2,
      spatial_merge_size: 2,
      out_hidden_size: micro ? 64 : 128,
      window_size: 112,
      fullatt_block_indexes: [1],
      rms_norm_eps: 1e-6,
      coordinate_frequencies: micro ? 4 : 8,
      temporal_frequencies: micro ? 2 : 8,
    },
    processor: {
      min_pixels: 4 * 28 * 28,
      max_pixels: (micro ? 64 : 144) * 28 * 28,
      patch_size: 14,
      merge_size: 2,
      temporal_patch_size: 2,
      image_mean: CLIP_MEAN,
      image_std: CLIP_STD,
    },
  };
}
