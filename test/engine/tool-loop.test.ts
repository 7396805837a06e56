import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { Engine } from '../../src/engine/engine.js';
import { OnnxModel } from '../../src/engine/onnx-model.js';
import { GREEDY } from '../../src/engine/sampler.js';
import type { ChatMessage } from '../../src/engine/types.js';
import { ChatTokenizer } from '../../src/model/chat-tokenizer.js';
import { loadModelFiles } from '../../src/model/model-dir.js';
import { decodeImage, type RgbImage } from '../../src/tools/image.js';
import { smartResize } from '../../src/model/processor/image-processor.js';
import { testImagePng, testModel } from '../helpers.js';

let engine: Engine;
let runner: OnnxModel;
let tokenizer: ChatTokenizer;
let png: Buffer;
let original: RgbImage;

before(async () => {
  const files = await loadModelFiles(await testModel('micro', 0));
  runner = await OnnxModel.load(files, { threads: 1 });
  tokenizer = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  engine = new Engine(runner, tokenizer, files.config, { maxModelLen: 4096 });
  png = await testImagePng(1600, 1100, 3);
  original = await decodeImage(png, { maxPixels: 1e8 });
});
after(() => runner.release());

const call = (args: string) => `I need to look closer.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": ${args}}\n</tool_call>`;

function conversation(assistant: string): ChatMessage[] {
  return [
    { role: 'user', content: [{ type: 'image', image: original }, { type: 'text', text: 'What is written in the top-left corner?' }] },
    { role: 'assistant', content: assistant },
  ];
}

test('a continued assistant message ending in a tool call crops the full-resolution original and feeds its tokens', async () => {
  const r = await engine.generate({ messages: conversation(call('{"bbox_2d": [0.25, 0.3, 0.5, 0.6], "target_image": 1}')), sampling: GREEDY, maxTokens: 8, tools: ['crop_image_normalized'], maxToolCalls: 0, stop: [] });
  const step = r.steps[0]!;
  assert.equal(step.ok, true);
  // Box: (0.25-0.1)*1600=240, (0.3-0.1)*1100=220, (0.5+0.1)*1600=960, (0.6+0.1)*1100=770.
  assert.deepEqual(step.box, [240, 220, 960, 770]);
  const expected = await sharp(png).extract({ left: 240, top: 220, width: 720, height: 550 }).removeAlpha().raw().toBuffer();
  const crop = step.result_images![0]!;
  assert.equal(crop.width, 720);
  assert.equal(crop.height, 550);
  assert.ok(Buffer.from(crop.data).equals(expected), 'crop pixels are not the original full-resolution region');

  const [w, h] = smartResize(550, 720, 28, 4 * 784, 64 * 784);
  assert.deepEqual(step.result_size, [w, h]);
  assert.equal(step.result_text, `\nHere is the cropped image (Image Size: ${w}x${h}):`);
  const cropTokens = (w / 28) * (h / 28);
  const turnText = tokenizer.encode(`<|im_end|>\n<|im_start|>user\n${step.result_text}<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n`).length;
  assert.equal(step.added_tokens, turnText - 1 + cropTokens, 'the result turn must carry one token per crop patch group');
  assert.equal(r.usage.prompt_tokens, r.promptTokenIds.length + step.added_tokens);
  assert.equal(r.usage.completion_tokens, r.tokenIds.length);
});

test('each invalid call gives the exact Execution error turn and generation continues', async () => {
  const cases: [string, string][] = [
    ['{"bbox_2d": [0.1, 0.1, 0.2', 'Invalid tool call: the content of <tool_call></tool_call> is not valid JSON'],
    ['{"bbox_2d": [1700, 1200, 1800, 1300], "target_image": 1}', 'The bounding box [1700,1200,1800,1300] is outside the image (size 1600x1100).'],
    ['{"bbox_2d": [0.2, 0.2, 0.2, 0.9], "target_image": 1}', 'Invalid bbox_2d [0.2,0.2,0.2,0.9]: x1 must be less than x2 and y1 less than y2.'],
    ['{"bbox_2d": [0.1, 0.1, 0.3, 0.3], "target_image": 4}', 'Invalid target_image 4: valid images are 1 to 1.'],
  ];
  for (const [args, error] of cases) {
    const r = await engine.generate({ messages: conversation(call(args)), sampling: GREEDY, maxTokens: 4, tools: ['crop_image_normalized'], maxToolCalls: 4, stop: [] });
    const step = r.steps[0]!;
    assert.equal(step.ok, false);
    assert.ok(step.error!.startsWith(error), `${step.error} should start with ${error}`);
    assert.equal(step.result_text, `\nExecution error:\n${step.error}\n`);
    assert.ok(r.tokenIds.length > 0, 'generation must resume after an error');
  }
});

test('without tools, a trailing tool call is just text (no execution)', async () => {
  const r = await engine.generate({ messages: conversation(call('{"bbox_2d": [0.1, 0.1, 0.3, 0.3], "target_image": 1}')), sampling: GREEDY, maxTokens: 4, tools: [], maxToolCalls: 4, stop: [] });
  assert.equal(r.steps.length, 0);
});

test('select_frames on a video: frames feed the model, more than 8 is an error', async () => {
  const frames = Array.from({ length: 16 }, (_, i) => ({ ...original, data: original.data.map((v) => (v + i * 10) % 256) }));
  const video = (assistant: string): ChatMessage[] => [
    { role: 'user', content: [{ type: 'video', frames }, { type: 'text', text: 'When does the light turn red?' }] },
    { role: 'assistant', content: assistant },
  ];
  const sel = (frames: number[]) => `<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": ${JSON.stringify(frames)}}}\n</tool_call>`;
  const ok = await engine.generate({ messages: video(sel([2, 5])), sampling: GREEDY, maxTokens: 2, tools: ['select_frames', 'crop_image_normalized'], maxToolCalls: 4, stop: [] });
  assert.equal(ok.steps[0]!.ok, true);
  assert.deepEqual(ok.steps[0]!.frames, [2, 5]);
  assert.ok(ok.steps[0]!.result_images![1]!.data.every((v, i) => v === frames[4]!.data[i]));
  assert.match(ok.steps[0]!.result_text, /^\nHere are the selected frames \(Frame Size: \d+x\d+, Numbered 1 to 2\):$/);
  const many = await engine.generate({ messages: video(sel([1, 2, 3, 4, 5, 6, 7, 8, 9])), sampling: GREEDY, maxTokens: 2, tools: ['select_frames'], maxToolCalls: 4, stop: [] });
  assert.equal(many.steps[0]!.result_text, '\nExecution error:\nToo many frames: you selected 9, but at most 8 frames can be selected at once.\n');
});

test('a video costs about one image of tokens; selected frames come back at the full image budget', async () => {
  const frames = Array.from({ length: 16 }, () => original);
  const r = await engine.generate({
    messages: [
      { role: 'user', content: [{ type: 'video', frames }, { type: 'text', text: 'Which frame?' }] },
      { role: 'assistant', content: '<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [3]}}\n</tool_call>' },
    ],
    sampling: GREEDY, maxTokens: 1, tools: ['select_frames'], maxToolCalls: 2, stop: [],
  });
  const [w, h] = smartResize(1100, 1600, 28, 4 * 784, 64 * 784);
  const imageTokens = (w / 28) * (h / 28);
  const videoTokens = r.promptTokenIds.filter((id) => id === tokenizer.tokenId('<|video_pad|>')).length;
  assert.ok(videoTokens > 0 && videoTokens <= imageTokens, `video ${videoTokens} tokens vs one image ${imageTokens}`);
  assert.deepEqual(r.steps[0]!.result_size, [w, h]);
});
