import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadWeights } from '../../src/model/load-weights.js';
import { loadModelFiles } from '../../src/model/model-dir.js';
import { transpose } from '../../src/util/matrix.js';
import { runSft } from '../../src/training/sft.js';
import { writeHfSnapshot } from '../model/hf/hf-snapshot.js';

test('SFT from a tied snapshot (Qwen2.5-VL-3B style) keeps the LM head tied: the trained model\'s head is its trained embedding', async () => {
  const root = mkdtempSync(join(tmpdir(), 'prs-tied-'));
  const snapshot = join(root, 'snapshot');
  await writeHfSnapshot(snapshot, {}, ({ config, tensors }) => {
    config.tie_word_embeddings = true;
    tensors.delete('lm_head.weight');
  });
  const out = join(root, 'run');
  process.env.PIXELREASONER_MODEL_CACHE = join(root, 'cache');
  const result = await runSft({
    base_model: snapshot, out, data: { suites: ['vstar-syn'], examples: 2, seed: 1 },
    hyperparameters: { steps: 2, batch_size: 2, lr: 0.01, warmup_steps: 1 }, checkpoint_every: 100,
  }, { log: () => {}, progress: false });
  assert.equal(result.state, 'succeeded');
  const trained = await loadWeights(join(out, 'model'));
  const base = await loadWeights((await loadModelFiles(snapshot, { dtype: 'fp32', cacheDir: join(root, 'cache') })).dir);
  const { vocab_size: v, hidden_size: h } = (await loadModelFiles(join(out, 'model'))).config.text;
  const embedding = trained.get('model.embed_tokens.weight')!.data;
  assert.notDeepEqual(embedding, base.get('model.embed_tokens.weight')!.data, 'the embedding did not train');
  assert.deepEqual(trained.get('lm_head.weight')!.data, transpose(embedding, v, h));
});
