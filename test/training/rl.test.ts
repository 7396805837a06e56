import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { OnnxModel } from '../../src/engine/onnx-model.js';
import { GREEDY } from '../../src/engine/sampler.js';
import { ChatTokenizer } from '../../src/model/chat-tokenizer.js';
import { loadWeights } from '../../src/model/load-weights.js';
import { loadModelFiles } from '../../src/model/model-dir.js';
import { featurize, makeBatch } from '../../src/training/batch.js';
import { OPTIMIZER_DEFAULTS } from '../../src/training/optimizer.js';
import { RlConfigSchema, runRl, tasksForStep } from '../../src/training/rl.js';
import { runSft } from '../../src/training/sft.js';
import { VSTAR_DEFAULTS, vstarTask } from '../../src/training/tasks/vstar-syn.js';
import { taskContent } from '../../src/training/eval.js';
import { Trainer } from '../../src/training/trainer.js';
import { testModel } from '../helpers.js';

const quiet = { log: () => {}, progress: false };

test('a rollout trajectory (with a tool turn) gets the same log-probs from the training graph as the engine sampled with', async () => {
  const files = await loadModelFiles(await testModel('micro', 5));
  const tok = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const runner = await OnnxModel.load(files, { threads: 1 });
  const engine = new Engine(runner, tok, files.config, { maxModelLen: 4096 });
  const task = await vstarTask(9);
  const call = tok.encode('Zoom.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.2, 0.2, 0.6, 0.6], "target_image": 1}}\n</tool_call>');
  const r = await engine.generate(
    { messages: [{ role: 'user', content: taskContent(task) }], sampling: GREEDY, maxTokens: call.length + 12, tools: ['crop_image_normalized'], maxToolCalls: 2, stop: [], logprobs: 0 },
    { recordTrajectory: true, overrideToken: (i) => call[i] },
  );
  assert.equal(r.steps.length, 1);
  assert.ok(r.steps[0]!.ok);
  const t = r.trajectory!;
  assert.equal(t.ids.length, r.usage.total_tokens);
  assert.deepEqual(t.ids.filter((_, i) => t.sampled[i] === 1), r.tokenIds);
  assert.equal(t.visuals.length, 2, 'the image and the crop');
  const example = await featurize({ ids: t.ids, positions: t.positions, weights: t.sampled, visuals: t.visuals }, runner);
  const trainer = await Trainer.create(files.config, await loadWeights(files.dir), OPTIMIZER_DEFAULTS, { threads: 1 });
  const { tokenLogprobs } = await trainer.evaluate(makeBatch([example], files.config.text.hidden_size));
  const fromGraph = t.sampled.flatMap((s, i) => (i > 0 && s === 1 ? [tokenLogprobs[i - 1]!] : []));
  const fromEngine = r.logprobs!.map((l) => l.logprob);
  assert.equal(fromGraph.length, fromEngine.length);
  const worst = Math.max(...fromGraph.map((v, i) => Math.abs(v - fromEngine[i]!)));
  console.log(`rollout log-probs: max |training graph - engine| ${worst.toExponential(2)} over ${fromGraph.length} sampled tokens`);
  assert.ok(worst < 1e-3, `max |log-prob difference| ${worst}`);
  await trainer.release();
  await runner.release();
});

test('a CI-sized RL run executes real tool calls in its rollouts and logs every reward part', async () => {
  const sftOut = mkdtempSync(join(tmpdir(), 'prs-rl-sft-'));
  const sft = await runSft({
    base_model: await testModel('micro', 0), out: sftOut,
    data: { suites: ['vstar-syn', 'tally-syn'], examples: 8, seed: 0 },
    hyperparameters: { steps: 30, batch_size: 4, lr: 0.003, warmup_steps: 3 },
  }, quiet);
  const out = mkdtempSync(join(tmpdir(), 'prs-rl-'));
  const result = await runRl({
    base_model: sft.modelDir, out,
    data: { suites: ['vstar-syn', 'tally-syn'], seed: 0 },
    rollouts: { group_size: 4, prompts_per_step: 2, temperature: 1, max_tokens: 64 },
    hyperparameters: { steps: 2, lr: 0.0005, kl_coef: 0.05 },
  }, quiet);
  assert.equal(result.state, 'succeeded');
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  for (const l of lines) {
    for (const key of ['reward', 'reward_correctness', 'reward_curiosity', 'reward_penalty', 'accuracy', 'rapr', 'tool_calls_per_rollout', 'tool_errors_per_rollout', 'loss', 'rollout_tokens_per_s', 'train_tokens_per_s']) {
      assert.ok(Number.isFinite(l[key]), `${key} = ${l[key]}`);
    }
  }
  for (const l of lines) console.log(`RL step ${l.step}: reward ${l.reward} = correctness ${l.reward_correctness} + curiosity ${l.reward_curiosity} + penalty ${l.reward_penalty}; tool calls/rollout ${l.tool_calls_per_rollout}, errors ${l.tool_errors_per_rollout}, RaPR ${l.rapr}, kl ${l.kl}`);
  assert.ok(lines.some((l) => l.tool_calls_per_rollout > 0), 'rollouts called tools');
  assert.equal(lines[0].kl, 0, 'the first step samples from the starting policy itself');
  assert.ok(Number.isFinite(lines[1].kl));
  assert.match(readFileSync(join(out, 'rewards.svg'), 'utf8'), /curiosity/);
  assert.ok(readFileSync(join(result.modelDir!, 'config.json'), 'utf8').includes('-rl'));
});

test('RL prompts follow the config\'s per-suite options, as SFT data does', async () => {
  const config = RlConfigSchema.parse({ base_model: 'm', out: 'o', data: { suites: ['vstar-syn'], suite_options: { 'vstar-syn': { targetSize: 64 } }, seed: 3 }, rollouts: { prompts_per_step: 1 } });
  const [pinned] = await tasksForStep(config, 2);
  const [plain] = await tasksForStep(RlConfigSchema.parse({ ...config, data: { suites: ['vstar-syn'], seed: 3 } }), 2);
  const region = (t: { region?: number[] }) => t.region![2]! - t.region![0]!;
  assert.equal(region(pinned!), 64);
  assert.equal(region(plain!), VSTAR_DEFAULTS.targetSize);
  assert.deepEqual(pinned!.image, (await vstarTask(5, { ...VSTAR_DEFAULTS, targetSize: 64 })).image);
});
