import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Engine } from '../../src/engine/engine.js';
import { OnnxModel } from '../../src/engine/onnx-model.js';
import { ChatTokenizer } from '../../src/model/chat-tokenizer.js';
import { loadModelFiles } from '../../src/model/model-dir.js';
import { exportTasks, readDataset } from '../../src/training/dataset.js';
import { cropHit, evaluateTasks, summarize, taskContent } from '../../src/training/eval.js';
import { generateSuite } from '../../src/training/tasks/index.js';
import { testModel } from '../helpers.js';

test('a dataset written by tasks export scores exactly like the suite on the same seeds', async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  const runner = await OnnxModel.load(files, { threads: 1 });
  const engine = new Engine(runner, new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson), files.config, { maxModelLen: 4096 });
  try {
    const tasks = [...(await generateSuite('vstar-syn', 3, 500)), ...(await generateSuite('tally-syn', 3, 500))];
    const dir = mkdtempSync(join(tmpdir(), 'prs-dataset-'));
    const file = await exportTasks(tasks, dir);
    const fromFile = await readDataset(file);
    assert.deepEqual(fromFile.map((t) => [t.id, t.suite, t.kind, t.answer]), tasks.map((t) => [t.id, t.suite, t.kind, t.answer]));
    assert.deepEqual(taskContent(fromFile[0]!).at(-1), taskContent(tasks[0]!).at(-1), 'same prompt text (choices as A: lines)');
    const a = await evaluateTasks(engine, tasks, { tools: true, maxTokens: 12 });
    const b = await evaluateTasks(engine, fromFile, { tools: true, maxTokens: 12 });
    assert.deepEqual(b.map((o) => o.prediction), a.map((o) => o.prediction));
    assert.deepEqual(summarize(fromFile, b), summarize(tasks, a));
  } finally {
    await runner.release();
  }
});

test('evaluateTasks runs more tasks than the engine queues at once, each outcome in task order', async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  const runner = await OnnxModel.load(files, { threads: 1 });
  const tokenizer = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const tight = new Engine(runner, tokenizer, files.config, { maxModelLen: 4096, maxNumSeqs: 1, maxWaiting: 1 });
  try {
    const tasks = await generateSuite('tally-syn', 5, 700);
    const outcomes = await evaluateTasks(tight, tasks, { tools: false, maxTokens: 3 });
    assert.deepEqual(outcomes.map((o) => o.id), tasks.map((t) => t.id));
    const roomy = new Engine(runner, tokenizer, files.config, { maxModelLen: 4096 });
    assert.deepEqual(outcomes.map((o) => o.prediction), (await evaluateTasks(roomy, tasks, { tools: false, maxTokens: 3 })).map((o) => o.prediction));
  } finally {
    await runner.release();
  }
});

test('pixelreasoner eval --json prints per-suite score, metric, RaPR and n on its last line', async () => {
  const model = await testModel('micro', 0);
  const bin = join(import.meta.dirname, '../../bin/pixelreasoner.js');
  const { stdout } = await promisify(execFile)(process.execPath, [bin, 'eval', '--model', model, '--suite', 'vstar-syn,tally-syn', '--n', '2', '--max-tokens', '8', '--json']);
  const last = JSON.parse(stdout.trim().split('\n').at(-1)!);
  for (const suite of ['vstar-syn', 'tally-syn']) {
    const s = last.suites[suite];
    assert.equal(s.metric, 'accuracy');
    assert.equal(s.n, 2);
    assert.ok(s.score >= 0 && s.score <= 1 && s.rapr >= 0 && s.rapr <= 1);
    assert.ok(s.score_stderr >= 0 && s.score_stderr <= 0.5);
    assert.equal(s.crop_hit, 0, 'eight tokens hold no crop call: every region is missed');
  }
});

test('a crop hits when the first crop of the original image contains the whole region', async () => {
  const [task] = await generateSuite('vstar-syn', 1, 500);
  const [x1, y1, x2, y2] = task!.region!;
  const crop = (box: [number, number, number, number], target_image = 1) => ({ index: 0, name: 'crop_image_normalized', arguments: {}, ok: true, box, target_image, result_text: '', added_tokens: 0 });
  assert.equal(cropHit(task!, [crop([x1 - 5, y1 - 5, x2 + 5, y2 + 5])]), true);
  assert.equal(cropHit(task!, [crop([x1 + 1, y1 - 5, x2 + 5, y2 + 5])]), false, 'cuts the region');
  assert.equal(cropHit(task!, [crop([x1 + 1, y1, x2, y2]), crop([0, 0, 10_000, 10_000])]), false, 'only the first crop counts');
  assert.equal(cropHit(task!, [crop([0, 0, 10, 10], 2), crop([x1, y1, x2, y2])]), true, 'a crop of a crop is not a look at the original');
  assert.equal(cropHit(task!, []), false, 'no crop');
  assert.equal(cropHit({ ...task!, region: undefined }, []), undefined, 'nothing to hit');
});

test('a frame selection hits when the first one includes an answer frame', async () => {
  const [task] = await generateSuite('mvbench-syn', 1, 500);
  const [a, b] = task!.answerFrames!;
  const select = (frames: number[], ok = true) => ({ index: 0, name: 'select_frames', arguments: {}, ok, frames, result_text: '', added_tokens: 0 });
  const other = a! > 2 ? 1 : 16;
  assert.equal(cropHit(task!, [select([b!])]), true);
  assert.equal(cropHit(task!, [select([other, a!])]), true, 'a key frame among others');
  assert.equal(cropHit(task!, [select([other]), select([a!])]), false, 'only the first selection counts');
  assert.equal(cropHit(task!, [select([a!], false), select([other])]), false, 'a failed call selected nothing');
  assert.equal(cropHit(task!, []), false, 'no selection');
});
