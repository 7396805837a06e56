/**
 * Weight precision against fp32 on the same prompts: a Hugging Face snapshot converted at fp32,
 * fp16, q8 and q4, each generating greedy tokens for the same image prompts. Reported per dtype:
 * top-1 agreement of the first generated token, the mean and max |log-probability error| of the
 * fp32 token over every position where the two sequences still agree (so both models condition on
 * the same prefix), and the mean length of that agreeing prefix.
 *
 *   node --import tsx bench/precision.ts --model SNAPSHOT [--prompts 8] [--tokens 16] [--dtypes fp32,fp16,q8,q4] [--json]
 */
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Engine } from '../src/engine/engine.js';
import { OnnxModel } from '../src/engine/onnx-model.js';
import { GREEDY } from '../src/engine/sampler.js';
import { ChatTokenizer } from '../src/model/chat-tokenizer.js';
import { loadModelFiles } from '../src/model/model-dir.js';
import { parseWeightDtype } from '../src/model/hf/model-cache.js';
import { decodeImage } from '../src/tools/image.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' }, prompts: { type: 'string' }, tokens: { type: 'string' }, dtypes: { type: 'string' },
    'model-cache': { type: 'string' }, json: { type: 'boolean' },
  },
});
if (!values.model) throw new Error('--model SNAPSHOT is required');
const PROMPTS = Number(values.prompts ?? 8);
const TOKENS = Number(values.tokens ?? 16);
const DTYPES = (values.dtypes ?? 'fp32,fp16,q8,q4').split(',').map((d) => parseWeightDtype(d)!);
const log = (s: string) => process.stderr.write(`${s}\n`);

const QUESTIONS = ['What is in the picture?', 'Describe the colours.', 'How many shapes are there?', 'What is in the top left corner?'];

/** Images of our own making: gradients, a few filled shapes, seeded noise. */
async function image(seed: number): Promise<Buffer> {
  const [w, h] = ([[448, 336], [640, 480], [300, 500], [800, 600]] as const)[seed % 4]!;
  const raw = Buffer.alloc(w * h * 3);
  let s = seed * 7919 + 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const i = (y * w + x) * 3;
      const inShape = ((x - w / 3) ** 2 + (y - h / 2) ** 2 < (h / 6) ** 2) || (x > (2 * w) / 3 && y < h / 3);
      raw[i] = inShape ? 220 : (x * 255) / w;
      raw[i + 1] = inShape ? 40 : (y * 255) / h;
      raw[i + 2] = (s >>> 24) / 2;
    }
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

interface Generation {
  tokens: number[];
  logprobs: number[];
}

async function run(dtype: (typeof DTYPES)[number]): Promise<Generation[]> {
  const files = await loadModelFiles(values.model!, { dtype, cacheDir: values['model-cache'], log });
  const runner = await OnnxModel.load(files);
  const engine = new Engine(runner, new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson), files.config, { maxModelLen: 8192, maxNumSeqs: 4 });
  const out: Generation[] = [];
  const started = Date.now();
  for (let p = 0; p < PROMPTS; p++) {
    const img = await decodeImage(await image(p), { maxPixels: 1e8 });
    const r = await engine.generate({
      messages: [{ role: 'user', content: [{ type: 'image', image: img }, { type: 'text', text: QUESTIONS[p % QUESTIONS.length]! }] }],
      sampling: GREEDY, maxTokens: TOKENS, tools: [], maxToolCalls: 0, stop: [], logprobs: 0, ignoreEos: true,
    });
    out.push({ tokens: r.tokenIds, logprobs: r.logprobs!.map((l) => l.logprob) });
  }
  log(`${dtype}: ${PROMPTS} prompts in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await runner.release();
  return out;
}

const results = new Map<string, Generation[]>();
for (const d of DTYPES) results.set(d, await run(d));
const reference = results.get('fp32');
if (!reference) throw new Error('fp32 is the reference: include it in --dtypes');
const rows = DTYPES.filter((d) => d !== 'fp32').map((dtype) => {
  const gens = results.get(dtype)!;
  const errors: number[] = [];
  let firstAgree = 0;
  let prefix = 0;
  gens.forEach((g, p) => {
    const ref = reference[p]!;
    if (g.tokens[0] === ref.tokens[0]) firstAgree++;
    let i = 0;
    while (i < ref.tokens.length && g.tokens[i] === ref.tokens[i]) {
      errors.push(Math.abs(g.logprobs[i]! - ref.logprobs[i]!));
      i++;
    }
    prefix += i;
  });
  return {
    dtype,
    top1_first_token: firstAgree / gens.length,
    mean_abs_logprob_error: errors.reduce((a, b) => a + b, 0) / Math.max(1, errors.length),
    max_abs_logprob_error: Math.max(0, ...errors),
    mean_agreeing_prefix: prefix / gens.length,
    tokens: TOKENS,
  };
});
for (const r of rows) {
  log(`${r.dtype}: first-token top-1 ${(100 * r.top1_first_token).toFixed(0)}%, |dlogprob| mean ${r.mean_abs_logprob_error.toExponential(2)} max ${r.max_abs_logprob_error.toExponential(2)}, agreeing prefix ${r.mean_agreeing_prefix.toFixed(1)}/${TOKENS}`);
}
if (values.json) console.log(JSON.stringify({ model: values.model, prompts: PROMPTS, rows }));
