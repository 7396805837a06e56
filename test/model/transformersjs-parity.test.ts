import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AutoProcessor, Qwen2_5_VLForConditionalGeneration, RawImage, env } from '@huggingface/transformers';
import { Engine } from '../../src/engine/engine.js';
import { OnnxModel } from '../../src/engine/onnx-model.js';
import { GREEDY } from '../../src/engine/sampler.js';
import { ChatTokenizer } from '../../src/model/chat-tokenizer.js';
import { loadModelFiles } from '../../src/model/model-dir.js';
import { decodeImage } from '../../src/tools/image.js';
import { testImagePng, testModel } from '../helpers.js';

env.allowRemoteModels = false;

const QUESTION = 'What color is the small circle in the corner?';
const IMAGES: [number, number][] = [[640, 480], [300, 900], [1500, 1000]];

for (const seed of [1, 2, 3]) {
  test(`transformers.js generates the same 32 greedy tokens as our engine (tiny, seed ${seed})`, async () => {
    const dir = await testModel('tiny', seed);
    const files = await loadModelFiles(dir);
    const runner = await OnnxModel.load(files, { threads: 1 });
    const engine = new Engine(runner, new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson), files.config, { maxModelLen: 4096 });
    const processor = await AutoProcessor.from_pretrained(dir);
    const model = await Qwen2_5_VLForConditionalGeneration.from_pretrained(dir, { dtype: 'fp32' });
    try {
      for (const [w, h] of IMAGES) {
        const png = await testImagePng(w, h, seed);
        const ours = await engine.generate({
          messages: [{ role: 'user', content: [{ type: 'image', image: await decodeImage(png, { maxPixels: 1e8 }) }, { type: 'text', text: QUESTION }] }],
          sampling: GREEDY, maxTokens: 32, tools: [], maxToolCalls: 0, stop: [],
        });
        const text = processor.apply_chat_template([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: QUESTION }] }], { add_generation_prompt: true });
        const inputs = await processor(text, await RawImage.fromBlob(new Blob([png])));
        const out = (await model.generate({ ...inputs, max_new_tokens: 32, do_sample: false })) as unknown as { tolist(): bigint[][] };
        const promptIds = (inputs.input_ids.tolist() as bigint[][])[0]!.map(Number);
        const theirs = out.tolist()[0]!.map(Number).slice(promptIds.length);
        assert.deepEqual(ours.promptTokenIds, promptIds, `prompt ids differ for ${w}x${h}`);
        assert.equal(ours.tokenIds.length, 32, 'our engine stopped early: the parity check needs 32 tokens');
        assert.deepEqual(ours.tokenIds, theirs, `generated ids differ for ${w}x${h}`);
      }
    } finally {
      await runner.release();
      await model.dispose();
    }
  });
}
