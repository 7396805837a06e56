/**
 * Serving benchmark: N concurrent pixel-reasoning requests (images of mixed sizes, each continuing
 * an assistant message that ends in a crop call, so every request pauses and resumes), run in one
 * process against: (a) our engine, (b) our engine with maxNumSeqs=1, (c) transformers.js on the
 * same model directory with the obvious tool loop (run the tool, re-run the whole conversation),
 * (d) the raw ONNX graphs doing the same model work at the same batch size (the ceiling), and, with
 * --hf-python and a snapshot as --model, (e) Hugging Face transformers (PyTorch, CPU, fp32) on that
 * snapshot with the Pixel-Reasoner reference's tool loop (crop with PIL, generate over the whole
 * conversation), one request after another over the first --hf-requests requests.
 * (a) and (d) run --reps times, alternating (these machines are shared and noisy): each figure is
 * the median run's, the event-loop lag the worst run's, and vs_raw_graph the median of the pairs' ratios
 * (each engine run against the raw run right after it, on the machine as it was then).
 * Prints tokens/s, TTFT p50/p95 and the ratios; with --json the last line is one JSON object.
 *
 *   npm run bench -- [--json] [--concurrency 16] [--tokens 64] [--model DIR|SNAPSHOT] [--dtype D] [--model-cache DIR] [--skip-transformersjs] [--skip-sequential] [--max-num-batched-tokens T]
 *                    [--reps 5]
 *                    [--threads N] [--hf-python PATH] [--hf-requests 4] [--hf-threads N]
 */
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AutoProcessor, Qwen2_5_VLForConditionalGeneration, RawImage, cat, env } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { OnnxModel } from '../src/engine/onnx-model.js';
import { openEngine } from '../src/engine/open-engine.js';
import { ENGINE_DEFAULTS } from '../src/engine/engine-config.js';
import { GREEDY } from '../src/engine/sampler.js';
import type { ChatMessage, GenerationRequest, GenerationResult } from '../src/engine/types.js';
import { resolveDefaultModel } from '../src/model/default-model.js';
import { loadModelFiles, ONNX_FILES, type ModelFiles } from '../src/model/model-dir.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage, type RgbImage } from '../src/tools/image.js';
import { preprocessFrames } from '../src/model/processor/image-processor.js';
import { pixelValues } from '../src/model/processor/patchify.js';
import { sessionOptions } from '../src/engine/session-options.js';
import { executeToolCall } from '../src/tools/operations.js';
import { parseWeightDtype } from '../src/model/hf/model-cache.js';
import { checkTransformersPython, runTransformersPeer, transformersSnapshot, type TransformersPeerResult } from './peers/transformers.js';

env.allowRemoteModels = false;

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' }, concurrency: { type: 'string' }, tokens: { type: 'string' }, model: { type: 'string' },
    'skip-transformersjs': { type: 'boolean' }, 'skip-sequential': { type: 'boolean' }, 'max-num-batched-tokens': { type: 'string' }, threads: { type: 'string' }, dtype: { type: 'string' }, 'model-cache': { type: 'string' },
    'hf-python': { type: 'string' }, 'hf-requests': { type: 'string' }, 'hf-threads': { type: 'string' }, reps: { type: 'string' },
  },
});
const N = Number(values.concurrency ?? 16);
const TOKENS = Number(values.tokens ?? 64);
const BATCHED_TOKENS = Number(values['max-num-batched-tokens'] ?? ENGINE_DEFAULTS.maxNumBatchedTokens);
// Five pairs by default: on a shared 2-core machine one pair's ratio moves by 5-10 points, and the median of three
// still fell on either side of 85% (one full run in six at d533131: the pairs 92, 79 and 83%).
const REPS = Math.max(1, Number(values.reps ?? 5));
const THREADS = values.threads ? Number(values.threads) : undefined;
const HF_REQUESTS = Math.min(N, Number(values['hf-requests'] ?? 4));
const HF_THREADS = Number(values['hf-threads'] ?? THREADS ?? availableParallelism());
/** Sampling interval of the event-loop delay histogram (ms). */
const LAG_RESOLUTION_MS = 5;
const log = (s: string) => process.stderr.write(`${s}\n`);

const SIZES: [number, number][] = [[640, 480], [1024, 768], [480, 800], [1600, 1000]];
const BOX = [0.3, 0.3, 0.6, 0.55];
const CALL = `I need a closer look.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [${BOX.join(', ')}], "target_image": 1}}\n</tool_call>`;

async function makeImage(w: number, h: number, seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761 + seed * 97) >>> 24;
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

interface Run {
  seconds: number;
  tokens: number;
  ttft: number[];
  /** Gaps between a request's consecutive tokens (ms; a tool call's pause included), where measured. */
  itl?: number[];
}

const tps = (r: Run) => r.tokens / r.seconds;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const question = (i: number) => `What is written on the small sign? (request ${i})`;

function requestFor(i: number, images: RgbImage[]): GenerationRequest {
  const messages: ChatMessage[] = [
    { role: 'user', content: [{ type: 'image', image: images[i % images.length]! }, { type: 'text', text: question(i) }] },
    { role: 'assistant', content: CALL },
  ];
  return { messages, sampling: GREEDY, maxTokens: TOKENS, ignoreEos: true, tools: ['crop_image_normalized'], maxToolCalls: 4, stop: [] };
}


/**
 * With `measureLag`, the event loop's delay over the timed run (its p99 beyond the histogram's
 * sampling interval, ms): how long the engine keeps the loop from serving anything else.
 */
async function runEngine(
  files: ModelFiles, images: RgbImage[], maxNumSeqs: number, measureLag = false,
): Promise<Run & { work: RawRequest[]; lagP99Ms?: number }> {
  const engine = await openEngine(files, { threads: THREADS, maxModelLen: 4096, maxNumSeqs, maxNumBatchedTokens: BATCHED_TOKENS });
  // Warm-up, as the raw graphs' peer is warmed: the sessions, the prefix cache's system prompt, a KV pool grown to the
  // workload's length (growing it is an allocation and a copy, not model work), and request 0's calls at the shapes the
  // timed run gives them. The first request generates twice the tokens, which on the tiny model's and the 3B shape's
  // workloads outgrows the longest request (whose own tool calls add turns; the raw graphs' peer knows its longest
  // exactly, this is a margin); at TOKENS alone the tiny model's pool grew once more in the timed run (~12 ms). It finds
  // the prefix cache empty, so it prefills the whole prompt (672 tokens on the tiny model); the second prefills what the
  // timed run's request 0 does (416, after 256 cached). Without it the timed run's first prefill took 38-73 ms against
  // the raw graphs' 20-21 (ONNX Runtime's first call at a new shape), and the first vision call 30-40 ms against 5-10.
  await engine.generate({ ...requestFor(0, images), maxTokens: 2 * TOKENS });
  await engine.generate(requestFor(0, images));
  const lag = measureLag ? monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS }) : undefined;
  lag?.enable();
  const t0 = performance.now();
  const ttft: number[] = [];
  const itl: number[] = [];
  const results = await Promise.all(
    Array.from({ length: N }, (_, i) => {
      let last: number | undefined;
      // Every generated token, whether or not it decodes to text (random checkpoints often give special tokens).
      const onLogits = () => {
        const now = performance.now();
        if (last === undefined) ttft.push(now - t0);
        else itl.push(now - last);
        last = now;
      };
      return engine.generate(requestFor(i, images), { onLogits });
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  lag?.disable();
  await engine.release();
  if (results.some((r) => r.steps[0]?.ok !== true)) throw new Error('a benchmark request did not run its crop');
  return {
    seconds, tokens: results.reduce((a, r) => a + r.tokenIds.length, 0), ttft, itl,
    work: results.map(rawRequestOf),
    // The histogram's samples include the interval itself (an idle loop reads LAG_RESOLUTION_MS).
    lagP99Ms: lag ? Math.max(0, lag.percentile(99) / 1e6 - LAG_RESOLUTION_MS) : undefined,
  };
}

/**
 * What the raw graphs do for one of the engine's requests. The first tool step is the client's call, whose result
 * turn prefills with the prompt; a later one is the model's own call mid-generation (a random checkpoint makes them,
 * often invalid): its result turn is a prefill of its own, and the token after it comes from that prefill, not a decode.
 */
interface RawRequest {
  /** Prompt tokens, the client call's result turn included, and how many of them came from the prefix cache. */
  prompt: number;
  cached: number;
  /** Tokens generated (fewer than asked for when a call past the tool limit ended the request). */
  generated: number;
  /** The prefills of the model's own calls, in order: the call's last token (not yet fed when it paused) and the result turn. */
  turns: { tokens: number; images: RgbImage[] }[];
}

function rawRequestOf(r: GenerationResult): RawRequest {
  const own = r.steps.slice(1);
  const prompt = r.usage.prompt_tokens - own.reduce((a, s) => a + s.added_tokens, 0);
  const turns = own.map((s) => ({ tokens: 1 + s.added_tokens, images: s.result_images ?? [] }));
  return { prompt, cached: r.usage.prompt_tokens_details?.cached_tokens ?? 0, generated: r.tokenIds.length, turns };
}

/** transformers.js, written the obvious way: run the tool, then generate over the whole conversation again. */
async function runTransformersJs(files: ModelFiles, pngs: Buffer[], images: RgbImage[]): Promise<Run> {
  const processor = await AutoProcessor.from_pretrained(files.dir);
  const model = await Qwen2_5_VLForConditionalGeneration.from_pretrained(files.dir, { dtype: 'fp32', session_options: THREADS ? { intraOpNumThreads: THREADS } : undefined });
  const oneRequest = async (i: number, t0: number, ttft: number[]) => {
    const crop = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: BOX, target_image: 1 }, raw: '' }, {
      images: [images[i % images.length]!], enabledTools: ['crop_image_normalized'], processor: files.config.processor,
    });
    if (!crop.ok) throw new Error(crop.error);
    const cropPng = await sharp(crop.images[0]!.data, { raw: { width: crop.images[0]!.width, height: crop.images[0]!.height, channels: 3 } }).png().toBuffer();
    const messages = [
      { role: 'user', content: [{ type: 'image' }, { type: 'text', text: `What is written on the small sign? (request ${i})` }] },
      { role: 'assistant', content: CALL },
      { role: 'user', content: [{ type: 'text', text: crop.text }, { type: 'image' }] },
    ];
    // Qwen2VLImageProcessor treats a list of images as frames of one video, so each image is
    // processed on its own and the placeholders expanded by hand (what processor() does for one).
    const text = processor.apply_chat_template(messages, { add_generation_prompt: true }) as string;
    const processed = await Promise.all([pngs[i % pngs.length]!, cropPng].map(async (png) => processor.image_processor!(await RawImage.fromBlob(new Blob([png])))));
    let k = 0;
    const expanded = text.replace(/<\|image_pad\|>/g, () => {
      const [t, h, w] = (processed[k++]!.image_grid_thw.tolist() as bigint[][])[0]!.map(Number);
      return '<|image_pad|>'.repeat((t! * h! * w!) / 4);
    });
    const encoded = processor.tokenizer!(expanded);
    const inputs = {
      ...encoded,
      pixel_values: cat(processed.map((p) => p.pixel_values), 0),
      image_grid_thw: cat(processed.map((p) => p.image_grid_thw), 0),
    };
    let calls = 0;
    const streamer = { put: () => { if (++calls === 2) ttft.push(performance.now() - t0); }, end: () => {} };
    const out = (await model.generate({ ...inputs, max_new_tokens: TOKENS, min_new_tokens: TOKENS, do_sample: false, streamer } as never)) as unknown as { dims: number[] };
    return out.dims[1]! - (inputs.input_ids.dims[1] as number);
  };
  await oneRequest(0, performance.now(), []); // warm-up
  const ttft: number[] = [];
  const t0 = performance.now();
  let tokens = 0;
  for (let i = 0; i < N; i++) tokens += await oneRequest(i, t0, ttft);
  const seconds = (performance.now() - t0) / 1000;
  await model.dispose();
  return { seconds, tokens, ttft };
}

/**
 * The same model work on the raw graphs: vision encodes, one prefill per request of the prompt
 * tokens the engine did not take from its prefix cache (past lengths include the cached positions,
 * so attention reads as many), TOKENS-1 decode steps at batch N less one row for each result turn of
 * a request's own calls, then those turns' encodes and prefills. New keys are written to the pool as
 * the engine's are.
 */
async function runRawGraph(files: ModelFiles, images: RgbImage[], requests: RawRequest[]): Promise<Run> {
  const runner = await OnnxModel.load(files, { threads: THREADS });
  const c = files.config.text;
  const crops = await Promise.all(images.map(async (img) => {
    const r = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: BOX, target_image: 1 }, raw: '' }, { images: [img], enabledTools: ['crop_image_normalized'], processor: files.config.processor });
    if (!r.ok) throw new Error(r.error);
    return r.images[0]!;
  }));
  // Pixel values made before the clock starts, fed to a vision session of this peer's own (the engine
  // patchifies the frames it encodes, which is preprocessing this peer does not do).
  const p = files.config.processor;
  const visionFeeds = (im: RgbImage) => preprocessFrames([im], p).then((input) => {
    const pixels = pixelValues(input, p);
    const rows = input.grid[0] * input.grid[1] * input.grid[2];
    return {
      pixel_values: new ort.Tensor('float32', pixels, [rows, pixels.length / rows]),
      image_grid_thw: new ort.Tensor('int64', BigInt64Array.from(input.grid.map(BigInt)), [1, 3]),
    };
  });
  const pair = (i: number) => [images[i % images.length]!, crops[i % crops.length]!];
  const visuals = await Promise.all(requests.map((_, i) => Promise.all(pair(i).map(visionFeeds))));
  const turnVisuals = await Promise.all(requests.map((r) => Promise.all(r.turns.map((t) => Promise.all(t.images.map(visionFeeds))))));
  const vision = await ort.InferenceSession.create(join(files.dir, ONNX_FILES.vision), sessionOptions({ threads: THREADS }));
  // The warm-up opens the sessions with one request's work and grows the KV pool to the workload's length, as the
  // engine's warm-up does; the timed run does all of the work.
  const pool = runner.createPool(N, 4096);
  // Decode rows: the requests with the most decode steps first, so each step's rows are the slots [0, rows).
  const order = requests.map((r, i) => ({ r, i, steps: r.generated - 1 - r.turns.length })).sort((a, b) => b.steps - a.steps);
  const prefill = (slot: number, at: number, s: number) => runner.runPooled(pool, {
    rows: 1, s, first: slot, embeds: new Float32Array(s * c.hidden_size), positions: new BigInt64Array(3 * s),
    pastLengths: [at], writes: [{ row: 0, slot, at, n: s }],
  });
  const decode = (pastLengths: number[]) => runner.runPooled(pool, {
    rows: pastLengths.length, s: 1, first: 0, embeds: new Float32Array(pastLengths.length * c.hidden_size),
    positions: new BigInt64Array(3 * pastLengths.length), pastLengths, writes: pastLengths.map((at, r) => ({ row: r, slot: r, at, n: 1 })),
  });
  const longest = Math.max(...requests.map((r) => r.prompt + r.generated + r.turns.reduce((a, t) => a + t.tokens, 0)));
  const work = async (warmUp: boolean) => {
    const n = warmUp ? 1 : N;
    if (warmUp) await decode(requests.map(() => longest - 1)); // every row at the longest length: the pool's full size
    for (const v of visuals.slice(0, n)) for (const feeds of v) await vision.run(feeds);
    for (const [slot, { r }] of order.slice(0, n).entries()) await prefill(slot, r.cached, r.prompt - r.cached);
    for (let step = warmUp ? TOKENS - 1 : 1; step < TOKENS; step++) {
      const rows = order.filter((o) => o.steps >= step).slice(0, n);
      if (rows.length > 0) await decode(rows.map((o) => o.r.prompt + step - 1));
    }
    for (const [slot, { r, i }] of order.slice(0, n).entries()) {
      let at = r.prompt + r.generated - 1 - r.turns.length; // after the decoded tokens (the turns' own order is not kept)
      for (const [k, t] of r.turns.entries()) {
        for (const feeds of turnVisuals[i]![k]!) await vision.run(feeds);
        await prefill(slot, at, t.tokens);
        at += t.tokens;
      }
    }
  };
  await work(true);
  const t0 = performance.now();
  await work(false);
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all([pool.release(), runner.release(), vision.release()]);
  return { seconds, tokens: requests.reduce((a, r) => a + r.generated, 0), ttft: [] };
}

/**
 * Peer (e) over the first HF_REQUESTS requests, one after another; each request's prompt tokens
 * are logged next to the engine's (`enginePromptTokens`): the same conversation, so the same count.
 */
async function runTransformers(
  python: string, snapshot: string, files: ModelFiles, pngs: Buffer[], images: RgbImage[], enginePromptTokens: number[],
): Promise<TransformersPeerResult> {
  log(`(e) transformers: ${HF_REQUESTS} of the ${N} requests, one after another, ${HF_THREADS} threads`);
  const r = await runTransformersPeer({
    python, snapshot, config: files.config, threads: HF_THREADS, maxNewTokens: TOKENS, call: CALL, bbox: BOX, log,
    requests: Array.from({ length: HF_REQUESTS }, (_, i) => ({ image: images[i % images.length]!, png: pngs[i % pngs.length]!, question: question(i) })),
  });
  log(`(e) transformers         ${(r.tokens / r.seconds).toFixed(1)} tok/s  TTFT p50 ${pct(r.ttft, 50).toFixed(0)} ms  p95 ${pct(r.ttft, 95).toFixed(0)} ms  (${r.seconds.toFixed(2)} s, ${r.requests} requests; processor: ${r.processor})`);
  for (let i = 0; i < r.requests; i++) {
    const same = r.promptTokens[i] === enginePromptTokens[i];
    log(`    request ${i}: prompt tokens transformers ${r.promptTokens[i]}, engine ${enginePromptTokens[i]}${same ? '' : '  MISMATCH: the peer does not run the engine\'s prompt'}; generated ${r.generated[i]}`);
  }
  if (r.tokens !== r.requests * TOKENS) log(`    WARNING: transformers generated ${r.tokens} tokens, not ${r.requests} x ${TOKENS}`);
  return r;
}

const dir = values.model ?? (await resolveDefaultModel(log));
// A Hugging Face snapshot is converted first (at --dtype, into --model-cache).
const files = await loadModelFiles(dir, { dtype: parseWeightDtype(values.dtype), cacheDir: values['model-cache'], log });
if (!existsSync(join(files.dir, ONNX_FILES.decoderKvPool))) throw new Error('the benchmark needs a model exported by this project (decoder_kvpool.onnx)');
const pngs = await Promise.all(SIZES.map(([w, h], i) => makeImage(w, h, i)));
const images = await Promise.all(pngs.map((p) => decodeImage(p, { maxPixels: 1e8 })));
log(`model ${files.name} (${dir}); ${N} concurrent requests, ${TOKENS} tokens each, one crop per request`);
// Peer (e) needs a snapshot and a python with torch and transformers: both checked before the runs.
const hfTarget = values['hf-python'] ? transformersSnapshot(values.model) : undefined;
if (hfTarget && 'unavailable' in hfTarget) log(`(e) transformers will not run: ${hfTarget.unavailable}`);
if (hfTarget && 'snapshot' in hfTarget) {
  const v = await checkTransformersPython(values['hf-python']!);
  log(`(e) transformers: torch ${v.torch}, transformers ${v.transformers} (${values['hf-python']})`);
}

// Heap growth over the engine runs (a leak shows as growth that survives a full collection): a
// figure here, not a threshold in a test.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
collect();
const heapBefore = process.memoryUsage().heapUsed;
// The median run of each (by tokens/s); the lag is the worst run's.
const median = <R extends Run>(runs: R[]): R => [...runs].sort((x, y) => tps(x) - tps(y))[Math.floor(runs.length / 2)]!;
const engineRuns: Awaited<ReturnType<typeof runEngine>>[] = [];
const rawRuns: Run[] = [];
for (let rep = 0; rep < REPS; rep++) {
  const r = await runEngine(files, images, N, true);
  const lag = `event-loop lag p99 ${r.lagP99Ms!.toFixed(1)} ms`;
  const itl = r.itl!.length > 0 ? `inter-token p50 ${pct(r.itl!, 50).toFixed(1)} ms  p99 ${pct(r.itl!, 99).toFixed(1)} ms` : 'inter-token n/a';
  log(`(a) engine               ${tps(r).toFixed(1)} tok/s  TTFT p50 ${pct(r.ttft, 50).toFixed(0)} ms  p95 ${pct(r.ttft, 95).toFixed(0)} ms  ${itl}  (${r.seconds.toFixed(2)} s)  ${lag}`);
  engineRuns.push(r);
  // The raw graphs do the work of the engine's requests (the first run's: every run's are the same).
  const d = await runRawGraph(files, images, engineRuns[0]!.work);
  const turns = engineRuns[0]!.work.reduce((a, w) => a + w.turns.length, 0);
  log(`(d) raw graphs           ${tps(d).toFixed(1)} tok/s  (${d.seconds.toFixed(2)} s; ${turns} result turns of the model's own calls)`);
  rawRuns.push(d);
}
const a = { ...median(engineRuns), lagP99Ms: Math.max(...engineRuns.map((r) => r.lagP99Ms!)) };
const d = median(rawRuns);
// The ratio of two medians can pair an engine run and a raw run from different moments: on a machine whose speed drifts
// by a third between runs (these are shared), that alone moves it by ten points. A pair's runs are back to back.
const pairRatios = engineRuns.map((r, i) => tps(r) / tps(rawRuns[i]!));
const vsRawGraph = pct(pairRatios, 50);
if (REPS > 1) log(`medians of ${REPS}: (a) ${tps(a).toFixed(1)} tok/s, (d) ${tps(d).toFixed(1)} tok/s; worst event-loop lag p99 ${a.lagP99Ms.toFixed(1)} ms`);
log(`(a)/(d) by pair: ${pairRatios.map((x) => `${(100 * x).toFixed(1)}%`).join(', ')}`);
const b = values['skip-sequential'] ? undefined : await runEngine(files, images, 1);
if (b) log(`(b) engine maxNumSeqs=1  ${(b.tokens / b.seconds).toFixed(1)} tok/s  TTFT p50 ${pct(b.ttft, 50).toFixed(0)} ms  p95 ${pct(b.ttft, 95).toFixed(0)} ms  (${b.seconds.toFixed(2)} s)`);
collect();
const heapGrowthMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
log(`heap after the engine runs: ${heapGrowthMiB >= 0 ? '+' : ''}${heapGrowthMiB.toFixed(1)} MiB`);
const c = values['skip-transformersjs'] ? undefined : await runTransformersJs(files, pngs, images);
if (c) log(`(c) transformers.js      ${(c.tokens / c.seconds).toFixed(1)} tok/s  TTFT p50 ${pct(c.ttft, 50).toFixed(0)} ms  p95 ${pct(c.ttft, 95).toFixed(0)} ms  (${c.seconds.toFixed(2)} s)`);
const e = hfTarget && 'snapshot' in hfTarget ? await runTransformers(values['hf-python']!, hfTarget.snapshot, files, pngs, images, a.work.map((w) => w.prompt)) : undefined;

const ratios = {
  vs_sequential: b ? tps(a) / tps(b) : null,
  vs_transformersjs: c ? tps(a) / tps(c) : null,
  vs_raw_graph: vsRawGraph,
  vs_transformers: e ? tps(a) / tps(e) : null,
};
log(`ratios: vs_sequential ${ratios.vs_sequential?.toFixed(2) ?? 'n/a'}x, vs_transformersjs ${ratios.vs_transformersjs?.toFixed(2) ?? 'n/a'}x, vs_raw_graph ${(100 * ratios.vs_raw_graph).toFixed(1)}%, vs_transformers ${ratios.vs_transformers?.toFixed(2) ?? 'n/a'}x`);
const summary = {
  ratios,
  concurrency: N,
  model: files.name,
  model_shape: {
    text_layers: files.config.text.num_hidden_layers, hidden: files.config.text.hidden_size, vocab: files.config.text.vocab_size,
    vision_blocks: files.config.vision.depth, dtype: values.dtype ?? null,
  },
  max_num_batched_tokens: BATCHED_TOKENS,
  heap_growth_mib: heapGrowthMiB,
  reps: REPS,
  vs_raw_graph_by_pair: pairRatios,
  tokens_per_request: TOKENS,
  prompt_tokens_per_request: a.work.reduce((x, w) => x + w.prompt + w.turns.reduce((y, t) => y + t.tokens, 0), 0) / N,
  cached_prompt_tokens_per_request: a.work.reduce((x, w) => x + w.cached, 0) / N,
  event_loop_lag_p99_ms: a.lagP99Ms,
  transformers_requests: e ? e.requests : null,
  tokens_per_s: { engine: tps(a), sequential: b ? tps(b) : null, transformersjs: c ? tps(c) : null, raw_graph: tps(d), transformers: e ? tps(e) : null },
  inter_token_ms: { engine: a.itl!.length > 0 ? { p50: pct(a.itl!, 50), p99: pct(a.itl!, 99) } : null },
  ttft_ms: {
    engine: { p50: pct(a.ttft, 50), p95: pct(a.ttft, 95) },
    sequential: b ? { p50: pct(b.ttft, 50), p95: pct(b.ttft, 95) } : null,
    transformersjs: c ? { p50: pct(c.ttft, 50), p95: pct(c.ttft, 95) } : null,
    transformers: e ? { p50: pct(e.ttft, 50), p95: pct(e.ttft, 95) } : null,
  },
};
if (values.json) console.log(JSON.stringify(summary));
else console.log(JSON.stringify(summary, null, 2));
process.exit(0);
