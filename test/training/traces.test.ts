import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatTokenizer } from '../../src/model/chat-tokenizer.js';
import { loadModelFiles } from '../../src/model/model-dir.js';
import { mvbenchTask } from '../../src/training/tasks/mvbench-syn.js';
import { vstarTask } from '../../src/training/tasks/vstar-syn.js';
import { LOCATE_QUESTION, synthesizeTrace, tokenizeTrace } from '../../src/training/traces.js';
import { testModel } from '../helpers.js';

test('self-correction trace: loss weights are 1 exactly on the correct assistant steps, 0 on results, image tokens and the wrong call', async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  const tok = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const task = await vstarTask(42);
  const trace = synthesizeTrace(task, 'self-correction', 42);
  assert.deepEqual(trace.steps.map((s) => s.train), [false, true, true]);
  const t = await tokenizeTrace(trace, tok, files.config);
  assert.equal(t.weights.length, t.ids.length);
  // Weighted tokens, in order, are exactly the two correct steps (+ the <|im_end|> closing the answer).
  const weighted = t.ids.filter((_, i) => t.weights[i] === 1);
  assert.deepEqual(weighted, [...tok.encode(trace.steps[1]!.text), ...tok.encode(`${trace.steps[2]!.text}<|im_end|>`)]);
  // Image tokens: two crops and the original, none weighted.
  const imageTokens = t.ids.flatMap((id, i) => (id === files.config.image_token_id ? [i] : []));
  assert.equal(t.visuals.length, 3);
  assert.ok(imageTokens.length > 0 && imageTokens.every((i) => t.weights[i] === 0));
  // The wrong call sits unweighted in the context, right before the first result turn.
  const wrong = tok.encode(trace.steps[0]!.text);
  const at = t.ids.findIndex((_, i) => wrong.every((id, k) => t.ids[i + k] === id));
  assert.ok(at > 0 && wrong.every((_, k) => t.weights[at + k] === 0), 'wrong call present and unweighted');
  // Tool-result text is unweighted: the unweighted stream decodes to contain both result turns.
  const unweightedText = tok.decode(t.ids.filter((id, i) => t.weights[i] === 0 && id !== files.config.image_token_id));
  assert.equal(unweightedText.match(/Here is the cropped image \(Image Size: \d+x\d+\):/g)?.length, 2);
  // The right crop contains the target region; the wrong one (padded by 0.1 of the image) does not.
  assert.equal(tok.decode(weighted).includes('crop_image_normalized'), true);
});

test('zoom and direct traces: weights cover every assistant token; positions and ids align', async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  const tok = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const task = await vstarTask(7);
  for (const kind of ['zoom', 'direct'] as const) {
    const trace = synthesizeTrace(task, kind);
    const t = await tokenizeTrace(trace, tok, files.config);
    for (const p of t.positions) assert.equal(p.length, t.ids.length);
    const expected = trace.steps.flatMap((s, i) => tok.encode(i === trace.steps.length - 1 ? `${s.text}<|im_end|>` : s.text));
    assert.deepEqual(t.ids.filter((_, i) => t.weights[i] === 1), expected);
    assert.equal(t.visuals.length, kind === 'zoom' ? 2 : 1);
  }
});

test('video traces select the answer frame with the real select_frames; the wrong frame of a self-correction is unweighted', async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  const tok = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const task = await mvbenchTask(3);
  const zoom = await tokenizeTrace(synthesizeTrace(task, 'zoom'), tok, files.config);
  const text = tok.decode(zoom.ids.filter((id) => id !== files.config.image_token_id && id !== files.config.video_token_id));
  assert.match(text, new RegExp(`"target_frames": \\[${task.answerFrames![0]}\\]`));
  assert.match(text, /Here are the selected frames \(Frame Size: \d+x\d+, Numbered 1 to 1\):/);
  assert.equal(zoom.visuals.length, 2, 'the video, then the selected frame');
  const sc = synthesizeTrace(task, 'self-correction', 3);
  const t = await tokenizeTrace(sc, tok, files.config);
  assert.deepEqual(t.ids.filter((_, i) => t.weights[i] === 1), [...tok.encode(sc.steps[1]!.text), ...tok.encode(`${sc.steps[2]!.text}<|im_end|>`)]);
});

test('the synthesized right crop always contains the answer region, the wrong first look never does', async () => {
  const { tallyTask } = await import('../../src/training/tasks/tally-syn.js');
  const { parseLastToolCall } = await import('../../src/tools/tool-call.js');
  const { executeToolCall } = await import('../../src/tools/operations.js');
  const files = await loadModelFiles(await testModel('micro', 0));
  for (let seed = 0; seed < 12; seed++) {
    for (const task of [await vstarTask(seed), await tallyTask(seed)]) {
      const trace = synthesizeTrace(task, 'self-correction', seed);
      const boxes = [];
      for (const step of trace.steps.slice(0, 2)) {
        const parsed = parseLastToolCall(step.text);
        assert.ok(parsed?.ok);
        const r = await executeToolCall(parsed.call, { images: [task.image!], enabledTools: ['crop_image_normalized'], processor: files.config.processor });
        assert.ok(r.ok, JSON.stringify(r));
        boxes.push(r.box!);
      }
      const [x1, y1, x2, y2] = task.region!;
      const contains = (b: number[]) => b[0]! <= x1 && b[1]! <= y1 && b[2]! >= x2 && b[3]! >= y2;
      const overlaps = (b: number[]) => b[0]! < x2 && b[2]! > x1 && b[1]! < y2 && b[3]! > y1;
      assert.ok(!overlaps(boxes[0]!), `${task.id}: wrong look ${boxes[0]} overlaps ${task.region}`);
      assert.ok(contains(boxes[1]!), `${task.id}: right crop ${boxes[1]} misses ${task.region}`);
    }
  }
});

test('a locate trace asks for the region without tools and trains on a tenths box that covers it', async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  const tok = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  for (const seed of [1, 2, 3]) {
    const task = await vstarTask(seed);
    const trace = synthesizeTrace(task, 'locate', seed);
    assert.deepEqual(trace.tools, []);
    assert.equal(trace.task.choices, undefined);
    assert.ok(trace.task.question.endsWith(LOCATE_QUESTION));
    const box = /\[([\d.]+), ([\d.]+), ([\d.]+), ([\d.]+)\]/.exec(trace.steps[0]!.text)!.slice(1).map(Number);
    const [x1, y1, x2, y2] = task.region!;
    const { width: w, height: h } = task.image!;
    // Tenths stop at 0.9 (a 1 would read as pixels); the crop's 0.1 padding reaches the edge.
    assert.ok(box[0]! <= x1 / w && box[2]! + 0.1 >= x2 / w && box[1]! <= y1 / h && box[3]! + 0.1 >= y2 / h, `box ${box} covers the region`);
    const t = await tokenizeTrace(trace, tok, files.config);
    assert.deepEqual(t.ids.filter((_, i) => t.weights[i] === 1), tok.encode(`${trace.steps[0]!.text}<|im_end|>`));
    assert.equal(t.visuals.length, 1);
  }
});

test('a look trace is a zoom trace cut after its call: same prompt, same trained first step, no crop run', async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  const tok = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const task = await vstarTask(4);
  const look = synthesizeTrace(task, 'look', 4);
  const zoom = synthesizeTrace(task, 'zoom', 4);
  assert.deepEqual(look.tools, zoom.tools);
  assert.deepEqual(look.steps, [zoom.steps[0]]);
  const [l, z] = [await tokenizeTrace(look, tok, files.config), await tokenizeTrace(zoom, tok, files.config)];
  assert.deepEqual(l.ids, z.ids.slice(0, l.ids.length));
  assert.deepEqual(l.ids.filter((_, i) => l.weights[i] === 1), tok.encode(look.steps[0]!.text));
  assert.equal(l.visuals.length, 1);
});

test('DESIGN.md §5 "erroneous operations are masked": a call that fails with an execution error is in the context, unweighted, with its error turn', async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  const tok = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  const task = await vstarTask(9);
  const good = synthesizeTrace(task, 'zoom', 9);
  // The failing call: a box of zero width (x1 = x2), which the crop refuses with an execution error.
  const failing = 'Let me zoom in.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.4, 0.4, 0.4, 0.6], "target_image": 1}}\n</tool_call>';
  const trace = { ...good, kind: 'self-correction' as const, steps: [{ text: failing, train: false }, ...good.steps] };
  const t = await tokenizeTrace(trace, tok, files.config);
  const weighted = t.ids.filter((_, i) => t.weights[i] === 1);
  assert.deepEqual(weighted, [...tok.encode(good.steps[0]!.text), ...tok.encode(`${good.steps[1]!.text}<|im_end|>`)]);
  const failed = tok.encode(failing);
  const at = t.ids.findIndex((_, i) => failed.every((id, k) => t.ids[i + k] === id));
  assert.ok(at > 0 && failed.every((_, k) => t.weights[at + k] === 0), 'the failed call is in the context and unweighted');
  const unweightedText = tok.decode(t.ids.filter((id, i) => t.weights[i] === 0 && id !== files.config.image_token_id));
  assert.match(unweightedText, /\nExecution error:\nInvalid bbox_2d \[0\.4,0\.4,0\.4,0\.6\]: x1 must be less than x2 and y1 less than y2\.\n/);
  assert.equal(t.visuals.length, 2, 'the original and the one successful crop');
});
