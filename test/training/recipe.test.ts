import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadWeights } from '../../src/model/load-weights.js';
import { readSafetensors } from '../../src/model/safetensors.js';
import { runRecipe } from '../../src/training/recipe.js';

test('the default recipe runs grounding, SFT phases, RL and the no-curiosity ablation, and eval --ablations scores the bundle in one table', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'prs-recipe-'));
  const recipe = {
    preset: 'micro', seed: 3,
    ground: [{ data: { suites: ['vstar-syn'], mix: { direct: 0, zoom: 0, 'self-correction': 0, locate: 1 } }, hyperparameters: { steps: 2, batch_size: 2 } }],
    sft: [
      { data: { suites: ['vstar-syn'], examples: 4, seed: 0 }, hyperparameters: { steps: 3, batch_size: 2 } },
      { data: { suites: ['vstar-syn'], examples: 2, seed: 9 }, hyperparameters: { steps: 1, batch_size: 2 } },
    ],
    rl: { data: { suites: ['vstar-syn'] }, rollouts: { group_size: 2, prompts_per_step: 1, max_tokens: 8 }, hyperparameters: { steps: 1 } },
    eval: { suites: ['vstar-syn'], n: 2, max_tokens: 8 },
  };
  const logs: string[] = [];
  const { bundle } = await runRecipe(recipe, join(dir, 'runs'), join(dir, 'bundle'), (m) => logs.push(m));
  assert.deepEqual(logs.filter((l) => /^\[\d\/6\]/.test(l)).map((l) => l.slice(0, 11)), ['[1/6] rando', '[2/6] groun', '[3/6] sft -', '[4/6] sft-2', '[5/6] rl ->', '[6/6] rl-no']);
  for (const f of ['config.json', 'training/ground-1-loss.svg', 'onnx/decoder_model_merged.onnx', 'recipe.json', 'training/sft-loss.svg', 'training/sft-2-loss.svg', 'training/rl-rewards.svg', 'training/rl-metrics.jsonl']) {
    assert.ok(existsSync(join(bundle, f)), f);
  }
  // The warm-start ablation is the last SFT phase's model, stored as fp16.
  const warm = await readSafetensors(join(bundle, 'ablations/warm-start.safetensors'));
  const sft = await loadWeights(join(dir, 'runs/sft-2/model'));
  assert.equal(warm.size, sft.size);
  for (const [name, w] of sft) w.data.forEach((v, i) => assert.ok(Math.abs(warm.get(name)!.data[i]! - v) <= Math.abs(v) * 2 ** -10 + 1e-7, name));
  assert.equal(JSON.parse(readFileSync(join(bundle, 'recipe.json'), 'utf8')).seed, 3);
  // The bundle's evaluation table: the command, the markdown rows and the same run's JSON.
  const report = readFileSync(join(bundle, 'EVAL.md'), 'utf8');
  assert.ok(report.includes('`pixelreasoner eval --ablations --suite vstar-syn --n 2 --max-tokens 8`'), report);
  assert.ok(report.includes('| full recipe | yes |'), report);
  const reported = JSON.parse(report.split('```json\n')[1]!.split('\n```')[0]!);
  assert.deepEqual(reported.rows.map((r: { name: string }) => r.name), ['without tools', 'warm-start', 'rl-no-curiosity', 'full recipe']);
  assert.equal(reported.rows[3].suites['vstar-syn'].n, 2);
  assert.equal(JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'))._name_or_path, `pixel-reasoner-${recipe.preset}`);

  // A second run finds every stage done and only re-bundles.
  const again: string[] = [];
  await runRecipe(recipe, join(dir, 'runs'), join(dir, 'bundle'), (m) => again.push(m));
  assert.equal(again.filter((l) => l.includes('done earlier')).length, 5);

  const bin = join(import.meta.dirname, '../../bin/pixelreasoner.js');
  const { stdout } = await promisify(execFile)(process.execPath, [bin, 'eval', '--model', bundle, '--ablations', '--suite', 'vstar-syn', '--n', '2', '--max-tokens', '8']);
  const lines = stdout.trim().split('\n');
  const json = JSON.parse(lines.at(-1)!);
  assert.deepEqual(json.rows.map((r: { name: string; tools: boolean }) => [r.name, r.tools]), [
    ['without tools', false], ['warm-start', true], ['rl-no-curiosity', true], ['full recipe', true],
  ]);
  assert.ok(lines.some((l) => l.startsWith('| full recipe | yes |')), 'markdown table row');
});
