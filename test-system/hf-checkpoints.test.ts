import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../src/server/server.js';
import { loadModelFiles } from '../src/model/model-dir.js';
import { decodeImage } from '../src/tools/image.js';
import { preprocessFrames } from '../src/model/processor/image-processor.js';
import { pixelValues } from '../src/model/processor/patchify.js';
import { dataUrl, startTestServer, testImagePng } from '../test/helpers.js';
import { makeCheckpoint, oracle, oraclePython, type OracleGeneration } from './hf/oracle.js';

/**
 * Real checkpoints, served as they are: random Qwen2.5-VL checkpoints written by transformers'
 * save_pretrained (BF16 shards, legacy names) in several configs, converted by our loader, must give
 * transformers' fp32 greedy tokens and per-token log-probabilities (within 1e-3), through the CLI
 * and the HTTP API, for prompts with one image, two images and a video, at sizes that need a
 * resize and sizes that do not; and a conversation resumed after a crop must match transformers run
 * on the whole sequence.
 */
const BIN = join(import.meta.dirname, '../bin/pixelreasoner.js');
const VARIANTS = ['tied-gqa2-legacy', 'untied-gqa7-nested', 'untied-gqa2-fullatt', 'tied-vocab151936'];
const TOKENS = 12;
const LOGPROB_TOLERANCE = 1e-3;
const dir = mkdtempSync(join(tmpdir(), 'prs-hf-'));
let python: string;

interface Prompt {
  name: string;
  images: string[];
  frames?: string[];
  text: string;
}

const images: Record<string, string> = {};
const prompts: Prompt[] = [];

async function savePng(name: string, w: number, h: number, seed: number): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, await testImagePng(w, h, seed));
  return path;
}

before(async () => {
  python = oraclePython();
  // 224x168 needs no resize (multiples of 28 within the budget); 1000x700 is downscaled (antialiased), 90x61 upscaled.
  images.exact = await savePng('exact.png', 224, 168, 1);
  images.large = await savePng('large.png', 1000, 700, 2);
  images.small = await savePng('small.png', 90, 61, 3);
  images.wide = await savePng('wide.png', 500, 333, 4);
  const frames = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => savePng(`frame${i}.png`, 320, 240, 10 + i)));
  prompts.push(
    { name: 'one image, no resize', images: [images.exact], text: 'Describe the picture.' },
    { name: 'one image, downscaled', images: [images.large], text: 'What is in the corner?' },
    { name: 'two images, resized', images: [images.wide, images.small], text: 'Compare the two pictures.' },
    { name: 'video', images: [], frames, text: 'What happens in the video?' },
  );
  for (const v of VARIANTS) makeCheckpoint(python, join(dir, v), v, VARIANTS.indexOf(v));
});

function oracleFor(model: string, p: Prompt): OracleGeneration {
  const content = [
    ...p.images.map((path) => ({ type: 'image', path })),
    ...(p.frames ? [{ type: 'video', frames: p.frames }] : []),
    { type: 'text', text: p.text },
  ];
  // Our frame budget for a video: one image's max_pixels spread over the frames (engine/prompt.ts videoFrameBudget).
  const videoMax = Math.floor((96 * 28 * 28 * 2) / Math.max(p.frames?.length ?? 2, 2));
  return oracle<OracleGeneration>(python, { op: 'generate', model, messages: [{ role: 'user', content }], max_new_tokens: TOKENS, video_pixels: { min: 4 * 784, max: videoMax } });
}

function assertSameGeneration(ours: { tokens: number[]; logprobs: number[] }, theirs: OracleGeneration, what: string): void {
  // Random weights can tie two logits; a tie within the numerical noise would make the test test nothing.
  assert.ok(Math.min(...theirs.margins) > 1e-3, `${what}: the oracle's top-2 logits nearly tie (${Math.min(...theirs.margins)}); pick another seed`);
  assert.deepEqual(ours.tokens, theirs.tokens, `${what}: greedy tokens differ`);
  const worst = Math.max(...ours.logprobs.map((lp, i) => Math.abs(lp - theirs.logprobs[i]!)));
  assert.ok(worst <= LOGPROB_TOLERANCE, `${what}: log-probabilities differ by up to ${worst}`);
  console.error(`# ${what}: ${ours.tokens.length} tokens identical, largest |log-probability difference| ${worst.toExponential(1)}`);
}

function cliGenerate(model: string, p: Prompt, extra: string[] = []): { prompt_token_ids: number[]; token_ids: number[]; logprobs: number[]; steps: unknown[] } {
  const args = [BIN, 'generate', '--model', model, '--dtype', 'fp32', '--model-cache', join(dir, 'cache'), '--json', '--max-tokens', String(TOKENS), '--prompt', p.text];
  for (const img of p.images) args.push('--image', img);
  if (p.frames) args.push('--video-frames', p.frames.join(','));
  const out = execFileSync(process.execPath, [...args, ...extra], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

test('pixel_values equal transformers\' Qwen2VLImageProcessor bit for bit, with and without a resize', async () => {
  const snapshot = join(dir, VARIANTS[0]!);
  const files = await loadModelFiles(snapshot, { dtype: 'fp32', cacheDir: join(dir, 'cache'), log: () => {} });
  // 20x2001: Pillow resizes images over 100x taller than wide vertically first.
  const sizes: [number, number][] = [[224, 168], [1000, 700], [90, 61], [333, 517], [30, 400], [2000, 1500], [57, 57], [20, 2001]];
  for (const [w, h] of sizes) {
    const path = await savePng(`pix-${w}x${h}.png`, w, h, w + h);
    const theirs = oracle<{ grid: number[] }>(python, { op: 'pixels', model: snapshot, image: path, out: join(dir, 'pixels.bin') });
    const raw = readFileSync(join(dir, 'pixels.bin'));
    const expected = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const input = await preprocessFrames([await decodeImage(readFileSync(path), { maxPixels: 1e8 })], files.config.processor);
    assert.deepEqual(input.grid, theirs.grid, `${w}x${h}: grid`);
    const ours = pixelValues(input, files.config.processor);
    assert.equal(ours.length, expected.length, `${w}x${h}: pixel count`);
    let differing = 0;
    for (let i = 0; i < expected.length; i++) if (expected[i] !== ours[i]) differing++;
    assert.equal(differing, 0, `${w}x${h}: ${differing} of ${expected.length} values differ`);
  }
});

for (const variant of VARIANTS) {
  describe(`checkpoint ${variant}`, () => {
    const model = () => join(dir, variant);
    const expected = new Map<string, OracleGeneration>();
    const expectedFor = (p: Prompt) => {
      if (!expected.has(p.name)) expected.set(p.name, oracleFor(model(), p));
      return expected.get(p.name)!;
    };

    test('generate --json: prompt ids, greedy tokens and log-probabilities equal transformers fp32', () => {
      for (const p of prompts) {
        const theirs = expectedFor(p);
        const ours = cliGenerate(model(), p, ['--no-tools']);
        assert.deepEqual(ours.prompt_token_ids, theirs.prompt_ids, `${p.name}: prompt ids differ`);
        assertSameGeneration({ tokens: ours.token_ids, logprobs: ours.logprobs }, theirs, `${variant}, ${p.name}`);
      }
    });

    describe('HTTP API', () => {
      let server: RunningServer;
      before(async () => {
        server = await startTestServer({ model: model(), modelDtype: 'fp32', modelCache: join(dir, 'cache'), threads: 2 });
      });
      after(() => server?.close());

      test('chat completions with logprobs equal transformers fp32', async () => {
        for (const p of prompts) {
          const theirs = expectedFor(p);
          const url = (path: string) => dataUrl(readFileSync(path));
          const content = [
            ...p.images.map((path) => ({ type: 'image_url', image_url: { url: url(path) } })),
            ...(p.frames ? [{ type: 'video', video: p.frames.map(url) }] : []),
            { type: 'text', text: p.text },
          ];
          const res = await fetch(`${server.url}/v1/chat/completions`, {
            method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: TOKENS, temperature: 0, logprobs: true, pixel_reasoning: { enabled: false } }),
          });
          assert.equal(res.status, 200, await res.clone().text());
          const body = (await res.json()) as { choices: { logprobs: { content: { token: string; logprob: number }[] } }[]; usage: { prompt_tokens: number } };
          assert.equal(body.usage.prompt_tokens, theirs.prompt_ids.length, `${p.name}: prompt length differs`);
          const lps = body.choices[0]!.logprobs.content.map((c) => c.logprob);
          const worst = Math.max(...lps.map((lp, i) => Math.abs(lp - theirs.logprobs[i]!)));
          assert.equal(lps.length, theirs.tokens.length, `${p.name}: expected ${theirs.tokens.length} tokens`);
          assert.ok(worst <= LOGPROB_TOLERANCE, `${variant}, ${p.name}: log-probabilities differ by up to ${worst}`);
          console.error(`# HTTP ${variant}, ${p.name}: largest |log-probability difference| ${worst.toExponential(1)}`);
        }
      });
    });

    test('a conversation resumed after a crop call equals transformers on the whole sequence', () => {
      const p: Prompt = { name: 'resume', images: [images.large!], text: 'What is in the corner?' };
      const bbox = [0.55, 0.5, 0.9, 0.85];
      const call = `I will zoom in.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [${bbox.join(', ')}], "target_image": 1}}\n</tool_call>`;
      const cropPath = join(dir, `crop-${variant}.png`);
      const crop = oracle<{ resized: [number, number] }>(python, { op: 'crop', model: model(), image: images.large!, bbox, out: cropPath });
      const theirs = oracle<OracleGeneration>(python, {
        op: 'generate', model: model(), reference_tools: true, max_new_tokens: TOKENS,
        messages: [{ role: 'user', content: [{ type: 'text', text: p.text }, { type: 'image', path: images.large! }] }],
        assistant_prefix: call,
        tail: [
          { type: 'text', text: `<|im_end|>\n<|im_start|>user\n\nHere is the cropped image (Image Size: ${crop.resized[0]}x${crop.resized[1]}):` },
          { type: 'image', path: cropPath },
          { type: 'text', text: '<|im_end|>\n<|im_start|>assistant\n' },
        ],
      });
      // Our side: the same question (text first: the reference prompt moves the image ahead), the call as the assistant message to continue.
      const ours = cliGenerate(model(), p, ['--assistant', call]);
      assert.equal((ours.steps[0] as { ok?: boolean }).ok, true, `the crop call failed: ${JSON.stringify(ours.steps[0])}`);
      assertSameGeneration({ tokens: ours.token_ids.slice(0, TOKENS), logprobs: ours.logprobs.slice(0, TOKENS) }, theirs, `${variant}, after the crop`);
    });
  });
}
