import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { initModelDir, loadModelFiles } from '../../src/model/model-dir.js';

async function tree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const p = join(e.parentPath, e.name);
      out.set(p.slice(dir.length), await readFile(p));
    }
  }
  return out;
}

test('model init is byte-identical for the same seed and differs for another seed', async () => {
  const base = join(tmpdir(), `prs-init-${process.pid}`);
  await initModelDir(`${base}-a`, { preset: 'micro', seed: 7 });
  await initModelDir(`${base}-b`, { preset: 'micro', seed: 7 });
  await initModelDir(`${base}-c`, { preset: 'micro', seed: 8 });
  const [a, b, c] = await Promise.all([tree(`${base}-a`), tree(`${base}-b`), tree(`${base}-c`)]);
  assert.deepEqual([...a.keys()].sort(), [
    '/config.json', '/generation_config.json', '/onnx/decoder_kvpool.onnx', '/onnx/decoder_kvpool.version', '/onnx/decoder_model_merged.onnx', '/onnx/embed_tokens.onnx',
    '/onnx/vision_encoder.onnx', '/preprocessor_config.json', '/tokenizer.json', '/tokenizer_config.json',
  ]);
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs between two inits with one seed`);
  assert.ok(!a.get('/onnx/decoder_model_merged.onnx')!.equals(c.get('/onnx/decoder_model_merged.onnx')!));
});

test('config.json has the fields transformers.js reads for qwen2_5_vl, and loads back', async () => {
  const dir = join(tmpdir(), `prs-init-cfg-${process.pid}`);
  const written = await initModelDir(dir, { preset: 'tiny', seed: 1 });
  const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'qwen2_5_vl');
  assert.equal(cfg.text_config.model_type, 'qwen2_5_vl_text');
  for (const k of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim']) assert.ok(cfg.text_config[k] > 0, k);
  for (const k of ['image_token_id', 'video_token_id', 'vision_start_token_id']) assert.equal(typeof cfg[k], 'number');
  assert.equal(cfg.vision_config.spatial_merge_size, 2);
  const pre = JSON.parse(await readFile(join(dir, 'preprocessor_config.json'), 'utf8'));
  assert.equal(pre.image_processor_type, 'Qwen2VLImageProcessor');
  assert.equal(pre.processor_class, 'Qwen2_5_VLProcessor');
  const loaded = await loadModelFiles(dir);
  assert.deepEqual(loaded.config, written);
});
