import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mropeStreams } from '../../../src/model/architecture/text-decoder.js';
import { fromConfigJson, toConfigJson, toPreprocessorJson, type TextConfig } from '../../../src/model/config.js';
import { presetConfig } from '../../../src/model/presets.js';

const ids = { image_token_id: 5, video_token_id: 6, vision_start_token_id: 7, vision_end_token_id: 8, eos_token_ids: [2], pad_token_id: 2 };
const text = (over: Partial<TextConfig>): TextConfig => ({ ...presetConfig('tiny', ids, 100).text, ...over });

test('M-RoPE streams: contiguous sections (Qwen2.5-VL) put w on the lowest frequencies; interleaved (Qwen3-VL) spreads every axis', () => {
  assert.deepEqual(mropeStreams(text({ mrope_section: [4, 6, 6], mrope_interleaved: false })), [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
  // H at i % 3 == 1 and W at i % 3 == 2 within 3 x their sections, T elsewhere (transformers' apply_interleaved_mrope).
  assert.deepEqual(mropeStreams(text({ mrope_section: [6, 5, 5], mrope_interleaved: true })), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
  assert.deepEqual(mropeStreams(text({ mrope_section: [8, 4, 4], mrope_interleaved: true })), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 0, 0]);
  assert.throws(() => mropeStreams(text({ mrope_section: [4, 4, 4], mrope_interleaved: false })), /must sum to head_dim\/2 = 16/);
});

test('mrope_interleaved round-trips through config.json (rope_scaling), and is absent when off', () => {
  const on = presetConfig('tiny', ids, 100);
  const base = presetConfig('micro', ids, 100);
  const json = toConfigJson(on) as { text_config: { rope_scaling: Record<string, unknown> } };
  assert.equal(json.text_config.rope_scaling.mrope_interleaved, true);
  assert.equal(fromConfigJson(json, toPreprocessorJson(on.processor)).text.mrope_interleaved, true);
  const off = toConfigJson(base) as { text_config: { rope_scaling: Record<string, unknown> } };
  assert.equal('mrope_interleaved' in off.text_config.rope_scaling, false);
  assert.equal(fromConfigJson(off, toPreprocessorJson(base.processor)).text.mrope_interleaved, undefined);
});
