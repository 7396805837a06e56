import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadWeights } from '../../../src/model/load-weights.js';
import { loadModelFiles } from '../../../src/model/model-dir.js';
import { writeSafetensors } from '../../../src/model/safetensors.js';
import type { ModelConfig } from '../../../src/model/config.js';
import type { Weights } from '../../../src/model/weights.js';
import { transpose } from '../../../src/util/matrix.js';
import { testModel } from '../../helpers.js';

/**
 * A Hugging Face snapshot of one of our generated models, written the way the Hub stores
 * Qwen2.5-VL (so `npm test` covers the loader without Python): Linear weights [out, in], the patch
 * embedding as a Conv3d kernel, sharded safetensors with an index, config.json in the flat legacy
 * layout or transformers 5.x's nested one, the chat template in chat_template.jinja.
 */
export interface SnapshotOptions {
  layout?: 'legacy' | 'nested';
  dtype?: 'F32' | 'F16' | 'BF16';
  shards?: number;
  /** The project model to write (default: a generated micro model). */
  from?: string;
}

type Tensor = { shape: number[]; data: Float32Array };

/** One shard: the tensors under their Hub names and shapes, through the project's safetensors writer. */
function writeShard(path: string, names: string[], tensors: Map<string, Tensor>, dtype: 'F32' | 'F16' | 'BF16'): Promise<void> {
  return writeSafetensors(path, new Map(names.map((n) => [n, { dims: tensors.get(n)!.shape, data: tensors.get(n)!.data }])), dtype);
}

/** Our weights under the Hub's names and layouts; values rounded to BF16 so every dtype stores them exactly. */
export async function hubTensors(modelDir: string): Promise<{ tensors: Map<string, Tensor>; config: ModelConfig; ours: Weights }> {
  const { config } = await loadModelFiles(modelDir);
  const weights = await loadWeights(modelDir);
  const tensors = new Map<string, Tensor>();
  const ours: Weights = new Map();
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  const bf16 = (d: Float32Array) => d.map((x) => ((f[0] = x), (bits[0] = bits[0]! & 0xffff0000), f[0]!));
  for (const [name, w] of weights) {
    const data = bf16(w.data);
    ours.set(name, { dims: w.dims, data });
    if (name === 'visual.patch_embed.proj.weight') {
      const v = config.vision;
      tensors.set(name, { shape: [v.hidden_size, v.in_chans, v.temporal_patch_size, v.patch_size, v.patch_size], data: transpose(data, w.dims[0]!, w.dims[1]!) });
    } else if (w.dims.length === 2 && name !== 'model.embed_tokens.weight') {
      tensors.set(name, { shape: [w.dims[1]!, w.dims[0]!], data: transpose(data, w.dims[0]!, w.dims[1]!) });
    } else tensors.set(name, { shape: w.dims, data });
  }
  return { tensors, config, ours };
}

/** Writes the snapshot; returns the config and our-layout weights it holds (the reference the import must reproduce). */
export async function writeHfSnapshot(
  out: string, opts: SnapshotOptions = {}, edit?: (files: { config: Record<string, any>; tensors: Map<string, Tensor> }) => void,
): Promise<{ config: ModelConfig; weights: Weights }> {
  const modelDir = opts.from ?? (await testModel('micro', 5));
  const files = await loadModelFiles(modelDir);
  const { tensors, config, ours } = await hubTensors(modelDir);
  const t = config.text;
  const text = {
    hidden_size: t.hidden_size, num_hidden_layers: t.num_hidden_layers, num_attention_heads: t.num_attention_heads,
    num_key_value_heads: t.num_key_value_heads, intermediate_size: t.intermediate_size, vocab_size: t.vocab_size, rms_norm_eps: t.rms_norm_eps,
    max_position_embeddings: t.max_position_embeddings, tie_word_embeddings: false, hidden_act: 'silu',
  };
  const rope = { mrope_section: t.mrope_section, ...(t.mrope_interleaved ? { mrope_interleaved: true } : {}) };
  const top = {
    architectures: ['Qwen2_5_VLForConditionalGeneration'], model_type: 'qwen2_5_vl', image_token_id: config.image_token_id,
    video_token_id: config.video_token_id, vision_start_token_id: config.vision_start_token_id, vision_end_token_id: config.vision_end_token_id,
    vision_config: { ...config.vision, in_channels: config.vision.in_chans, model_type: 'qwen2_5_vl_vision' },
  };
  const configJson: Record<string, any> = opts.layout === 'nested'
    ? { ...top, text_config: { ...text, model_type: 'qwen2_5_vl_text', rope_parameters: { rope_type: 'default', rope_theta: t.rope_theta, ...rope } }, tie_word_embeddings: false }
    : { ...top, ...text, rope_theta: t.rope_theta, rope_scaling: { type: 'mrope', ...rope } };
  edit?.({ config: configJson, tensors });
  await mkdir(out, { recursive: true });
  const names = [...tensors.keys()].sort();
  const shards = opts.shards ?? 1;
  const dtype = opts.dtype ?? 'BF16';
  if (shards === 1) await writeShard(join(out, 'model.safetensors'), names, tensors, dtype);
  else {
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = names.filter((_, i) => i % shards === s);
      for (const n of part) weightMap[n] = file;
      await writeShard(join(out, file), part, tensors, dtype);
    }
    await writeFile(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  }
  await writeFile(join(out, 'config.json'), JSON.stringify(configJson, null, 2));
  await writeFile(join(out, 'generation_config.json'), JSON.stringify({ eos_token_id: config.eos_token_ids, pad_token_id: config.pad_token_id }));
  await writeFile(join(out, 'preprocessor_config.json'), JSON.stringify({ min_pixels: config.processor.min_pixels, max_pixels: config.processor.max_pixels, patch_size: 14, merge_size: 2, temporal_patch_size: 2 }));
  await writeFile(join(out, 'tokenizer.json'), JSON.stringify(files.tokenizerJson));
  const { chat_template: template, ...tokenizerConfig } = files.tokenizerConfigJson;
  await writeFile(join(out, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  await writeFile(join(out, 'chat_template.jinja'), String(template));
  return { config, weights: ours };
}
