/**
 * Serving-benchmark peer (e): Hugging Face transformers (PyTorch, CPU, fp32) on the same snapshot,
 * with the Pixel-Reasoner reference's tool loop (bench/peers/transformers_tool_loop.py does the
 * work; this side writes its spec with the engine's exact texts and reads its one JSON line).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../../src/model/config.js';
import { isSnapshot } from '../../src/model/hf/model-cache.js';
import { REFERENCE_GUIDELINE, referenceSystemPrompt } from '../../src/tools/definitions.js';
import type { RgbImage } from '../../src/tools/image.js';
import { executeToolCall } from '../../src/tools/operations.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'transformers_tool_loop.py');

/**
 * The system text the engine puts in front of the reference's tool block when a request has no
 * system message (src/engine/prompt.ts buildPrompt).
 */
const DEFAULT_SYSTEM = 'You are a helpful assistant.';

/** The Hugging Face snapshot behind --model, or why the peer cannot run on it. */
export function transformersSnapshot(model: string | undefined): { snapshot: string } | { unavailable: string } {
  if (model === undefined) return { unavailable: 'the model is the project\'s default ONNX model, not a Hugging Face snapshot (pass --model SNAPSHOT)' };
  if (!isSnapshot(model)) return { unavailable: `${model} is an ONNX model directory of this project, not a Hugging Face snapshot` };
  let config: { architectures?: string[] };
  try {
    config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { architectures?: string[] };
  } catch (e) {
    return { unavailable: `${model}/config.json cannot be read (${(e as Error).message})` };
  }
  if (!config.architectures?.includes('Qwen2_5_VLForConditionalGeneration')) {
    return { unavailable: `${model} is not a Qwen2.5-VL snapshot (architectures ${JSON.stringify(config.architectures ?? null)})` };
  }
  return { snapshot: model };
}

export interface TransformersPeerRequest {
  /** The request's image, as the engine decoded it and as a PNG for PIL. */
  image: RgbImage;
  png: Buffer;
  /** The user's question, before the engine appends the reference guideline. */
  question: string;
}

export interface TransformersPeerOptions {
  python: string;
  snapshot: string;
  /** The converted model's config (the engine's prompt construction depends on it). */
  config: ModelConfig;
  threads: number;
  maxNewTokens: number;
  /** The assistant message the requests continue, ending in the crop call. */
  call: string;
  /** The call's bbox_2d (normalized), target image 1. */
  bbox: number[];
  requests: TransformersPeerRequest[];
  log: (s: string) => void;
}

export interface TransformersPeerResult {
  requests: number;
  tokens: number;
  seconds: number;
  /** Per request, from the start of the timed loop to its first generated token. */
  ttft: number[];
  /** Per request: the whole conversation's tokens (tool-result turn included), and tokens generated. */
  promptTokens: number[];
  generated: number[];
  processor: string;
}

/** Fails early, naming what to install, when `python` cannot run the peer (no torch, transformers or Pillow). */
export async function checkTransformersPython(python: string): Promise<{ torch: string; transformers: string }> {
  return (await runScript(python, ['--check'])) as { torch: string; transformers: string };
}

/** Runs the peer's requests one after another (after one untimed warm-up request) and returns its figures. */
export async function runTransformersPeer(o: TransformersPeerOptions): Promise<TransformersPeerResult> {
  if (o.config.pixel_reasoning_prompt !== 'reference') {
    throw new Error('the transformers peer reproduces the reference prompt, but this model\'s config does not name it (pixel_reasoning_prompt)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'prs-hf-peer-'));
  try {
    const pngPaths = new Map<Buffer, string>();
    const requests = await Promise.all(o.requests.map(async (r, i) => {
      const outcome = await executeToolCall({ name: 'crop_image_normalized', arguments: { bbox_2d: o.bbox, target_image: 1 }, raw: '' }, {
        images: [r.image], enabledTools: ['crop_image_normalized'], processor: o.config.processor,
      });
      if (!outcome.ok) throw new Error(outcome.error);
      let path = pngPaths.get(r.png);
      if (!path) {
        path = join(dir, `image-${i}.png`);
        writeFileSync(path, r.png);
        pngPaths.set(r.png, path);
      }
      return { image: path, question: r.question + REFERENCE_GUIDELINE, result_text: outcome.text, bbox: o.bbox, crop_box: outcome.box };
    }));
    const spec = {
      snapshot: o.snapshot, threads: o.threads, max_new_tokens: o.maxNewTokens,
      system: referenceSystemPrompt(DEFAULT_SYSTEM), call: o.call, requests,
    };
    const specPath = join(dir, 'spec.json');
    writeFileSync(specPath, JSON.stringify(spec));
    const p = (await runScript(o.python, [specPath])) as { requests: number; tokens: number; seconds: number; ttft_ms: number[]; prompt_tokens: number[]; generated: number[]; processor: string };
    return { requests: p.requests, tokens: p.tokens, seconds: p.seconds, ttft: p.ttft_ms, promptTokens: p.prompt_tokens, generated: p.generated, processor: p.processor };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the peer's script and parses the one JSON line it ends its stdout with. */
async function runScript(python: string, args: string[]): Promise<unknown> {
  const { code, stdout } = await runPython(python, [SCRIPT, ...args]);
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let parsed: { missing?: unknown } | undefined;
  try {
    parsed = JSON.parse(last) as { missing?: unknown };
  } catch {
    parsed = undefined;
  }
  if (code === 3 && typeof parsed?.missing === 'string') throw new Error(installHint(python, parsed.missing));
  if (code !== 0 || !parsed) throw new Error(`the transformers peer (${python} ${SCRIPT}) failed with status ${code}${last ? `: ${last}` : ''}`);
  return parsed;
}

function runPython(python: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  if (python.includes('/') && !existsSync(python)) return Promise.reject(new Error(`--hf-python ${python}: no such file`));
  return new Promise((resolve, reject) => {
    // Progress and warnings go straight to our stderr; stdout carries the result line.
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.on('error', (e) => reject(new Error(`--hf-python ${python} cannot be started: ${e.message}`)));
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

/** What to install, with the machine's own package index (from pip's configuration) when it has one. */
function installHint(python: string, missing: string): string {
  const index = pipIndex(python);
  return `${python} lacks the Python module "${missing}": the transformers peer needs torch and transformers (and Pillow). Install them with\n`
    + `  ${python} -m pip install torch transformers${index ? ` --index-url ${index}` : ''}\n`
    + (index ? '' : '(`pip config list` shows the machine\'s package index, if it has one)\n');
}

function pipIndex(python: string): string | undefined {
  for (const [cmd, args] of [[python, ['-m', 'pip', 'config', 'list']], ['pip', ['config', 'list']]] as const) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0 || !r.stdout) continue;
    const lines = r.stdout.split('\n');
    for (const key of ['.index-url=', '.extra-index-url=']) {
      const line = lines.find((l) => l.includes(key));
      const url = line?.slice(line.indexOf('=') + 1).replace(/^['"]|['"]$/g, '').trim().split(/\s+/)[0];
      if (url) return url;
    }
  }
  return undefined;
}
