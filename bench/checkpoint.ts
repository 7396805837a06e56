/**
 * A real-shaped checkpoint on this machine: load time and memory, time to first token of a prompt
 * with one image, single-stream decode speed against its physical limit (bytes of decoder weights
 * read per token over the measured memory read bandwidth), and aggregate decode speed with 16
 * concurrent requests.
 *
 *   node --import tsx bench/checkpoint.ts --model SNAPSHOT|DIR [--dtype q4] [--model-cache DIR] [--tokens 48] [--concurrency 16] [--json]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Engine } from '../src/engine/engine.js';
import { OnnxModel } from '../src/engine/onnx-model.js';
import { GREEDY } from '../src/engine/sampler.js';
import type { GenerationRequest } from '../src/engine/types.js';
import { ChatTokenizer } from '../src/model/chat-tokenizer.js';
import { parseWeightDtype } from '../src/model/hf/model-cache.js';
import { importedModelGraphs, loadModelFiles, ONNX_FILES } from '../src/model/model-dir.js';
import type { WeightDtype } from '../src/model/onnx/weight-precision.js';
import { decodeImage } from '../src/tools/image.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' }, dtype: { type: 'string' }, 'model-cache': { type: 'string' }, tokens: { type: 'string' },
    concurrency: { type: 'string' }, json: { type: 'boolean' }, 'image-size': { type: 'string' },
  },
});
if (!values.model) throw new Error('--model is required');
const TOKENS = Number(values.tokens ?? 48);
const N = Number(values.concurrency ?? 16);
const [IW, IH] = (values['image-size'] ?? '640x480').split('x').map(Number) as [number, number];
const log = (s: string) => process.stderr.write(`${s}\n`);
const rssMiB = () => Math.round(process.memoryUsage().rss / 2 ** 20);

/** Memory read bandwidth of this machine: the best of 8 passes of a C loop summing a 2 GiB buffer on every core (gcc -O3 -march=native -fopenmp). */
function readBandwidthGBs(): number | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'prs-bw-'));
  const src = join(dir, 'bw.c');
  writeFileSync(src, `#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <omp.h>
int main(){ size_t n = (size_t)1 << 28; uint64_t *a = malloc(n * 8); for (size_t i = 0; i < n; i++) a[i] = i;
double best = 0; for (int r = 0; r < 8; r++) { double t = omp_get_wtime(); uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp parallel for reduction(+:s0,s1,s2,s3)
for (size_t i = 0; i < n; i += 4) { s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3]; }
t = omp_get_wtime() - t; double gbs = n * 8.0 / t / 1e9; if (gbs > best) best = gbs; if (s0 + s1 + s2 + s3 == 42) printf("x"); }
printf("%f\\n", best); return 0; }`);
  try {
    execFileSync('gcc', ['-O3', '-march=native', '-fopenmp', src, '-o', join(dir, 'bw')]);
    return Number(execFileSync(join(dir, 'bw')).toString().trim());
  } catch {
    return undefined;
  }
}

/** Bytes of decoder weights one decode step reads: every parameter of the decoder graph (the embedding row aside). */
function decoderWeightBytes(config: Parameters<typeof importedModelGraphs>[0], dtype: WeightDtype): number {
  const g = importedModelGraphs(config, dtype).graphs[ONNX_FILES.decoderKvPool];
  const size = { float32: 4, float16: 2, uint8: 1 } as Record<string, number>;
  let bytes = 0;
  for (const p of g.params.values()) bytes += p.dims.reduce((a, b) => a * b, 1) * (size[p.dtype ?? 'float32'] ?? 4);
  return bytes;
}

const dtype = parseWeightDtype(values.dtype) ?? 'q4';
const rss0 = rssMiB();
let t = performance.now();
const files = await loadModelFiles(values.model, { dtype, cacheDir: values['model-cache'], log });
const convertSeconds = (performance.now() - t) / 1000;
t = performance.now();
const runner = await OnnxModel.load(files);
const engine = new Engine(runner, new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson), files.config, { maxModelLen: 4096, maxNumSeqs: N });
const loadSeconds = (performance.now() - t) / 1000;
log(`loaded in ${loadSeconds.toFixed(1)} s, RSS ${rssMiB()} MiB`);

const raw = Buffer.alloc(IW * IH * 3);
for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
const image = await decodeImage(await sharp(raw, { raw: { width: IW, height: IH, channels: 3 } }).png().toBuffer(), { maxPixels: 1e8 });

function request(withImage: boolean, i: number, maxTokens: number): GenerationRequest {
  const text = `Question ${i}: describe what you see in detail.`;
  return {
    messages: [{ role: 'user', content: withImage ? [{ type: 'image', image }, { type: 'text', text }] : text }],
    sampling: GREEDY, maxTokens, tools: [], maxToolCalls: 0, stop: [], ignoreEos: true,
  };
}

/** Wall time of running `reqs` at once, and the first request's time to first token and prompt length. */
async function timed(reqs: GenerationRequest[]): Promise<{ seconds: number; ttft: number; promptTokens: number }> {
  const start = performance.now();
  let first: number | undefined;
  const results = await Promise.all(reqs.map((r, i) => engine.generate(r, { onEvent: () => { if (i === 0) first ??= performance.now(); } })));
  return { seconds: (performance.now() - start) / 1000, ttft: ((first ?? performance.now()) - start) / 1000, promptTokens: results[0]!.usage.prompt_tokens };
}

/**
 * Decode tokens/s of `n` concurrent streams: the same requests run with 1 and with 1 + TOKENS new
 * tokens, so prefill (and its image) cancels out of the difference. Counts tokens, not text events
 * (a random model's tokens often decode to no text).
 */
async function decodeRate(n: number, withImage: boolean): Promise<number> {
  const short = await timed(Array.from({ length: n }, (_, i) => request(withImage, i, 1)));
  const long = await timed(Array.from({ length: n }, (_, i) => request(withImage, i, 1 + TOKENS)));
  return (n * TOKENS) / (long.seconds - short.seconds);
}

await timed([request(false, -1, 2)]); // warm-up
const single = await timed([request(true, 0, 1)]);
log(`one image: ${single.promptTokens} prompt tokens, TTFT ${single.ttft.toFixed(2)} s`);
const rate1 = await decodeRate(1, false);
log(`1 stream: decode ${rate1.toFixed(2)} tok/s`);
const rateN = await decodeRate(N, false);
log(`${N} concurrent: decode ${rateN.toFixed(2)} tok/s in all`);
const bandwidth = readBandwidthGBs();
const weightBytes = decoderWeightBytes(files.config, dtype);
const limit = bandwidth ? (bandwidth * 1e9) / weightBytes : undefined;
const report = {
  model: values.model, dtype, convert_or_cache_seconds: convertSeconds, load_seconds: loadSeconds, rss_mib_after: rssMiB(), rss_mib_before: rss0,
  prompt_tokens_one_image: single.promptTokens, ttft_one_image_s: single.ttft, decode_tok_s_1: rate1,
  concurrency: N, decode_tok_s_concurrent: rateN, decoder_weight_bytes: weightBytes, read_bandwidth_gb_s: bandwidth,
  decode_limit_tok_s: limit, share_of_limit: limit ? rate1 / limit : undefined,
};
log(`decoder weights ${(weightBytes / 2 ** 30).toFixed(2)} GiB per token; read bandwidth ${bandwidth?.toFixed(1)} GB/s -> limit ${limit?.toFixed(2)} tok/s; reached ${report.share_of_limit ? (100 * report.share_of_limit).toFixed(0) : '?'}%`);
if (values.json) console.log(JSON.stringify(report));
await runner.release();
