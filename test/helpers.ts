import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import sharp from 'sharp';
import { Engine, type EngineOptions } from '../src/engine/engine.js';
import { OnnxModel } from '../src/engine/onnx-model.js';
import { ChatTokenizer } from '../src/model/chat-tokenizer.js';
import { initModelDir, loadModelFiles, type ModelFiles } from '../src/model/model-dir.js';
import type { PresetName } from '../src/model/presets.js';
import { resolveConfig, type ServerConfig } from '../src/server/config.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { decodeImage, type RgbImage } from '../src/tools/image.js';

/** A model directory generated on the fly (cached per preset+seed for the test run's process). */
export async function testModel(preset: PresetName = 'micro', seed = 0): Promise<string> {
  const dir = join(tmpdir(), `prs-test-${process.pid}-${preset}-${seed}`);
  if (!existsSync(join(dir, 'config.json'))) await initModelDir(dir, { preset, seed });
  return dir;
}

/** A generated model opened for engine tests: its files, its ONNX sessions (2 threads) and its tokenizer. */
export async function openTestModel(preset: PresetName, seed: number): Promise<{ files: ModelFiles; model: OnnxModel; tokenizer: ChatTokenizer }> {
  const files = await loadModelFiles(await testModel(preset, seed));
  const model = await OnnxModel.load(files, { threads: 2 });
  return { files, model, tokenizer: new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson) };
}

/** What engine tests share: a generated model, its tokenizer, a test image, and engines over them. */
export interface EngineTestBed {
  files: ModelFiles;
  model: OnnxModel;
  tokenizer: ChatTokenizer;
  image: RgbImage;
  engine(options: EngineOptions): Engine;
}

/** Opens the model and the image (width, height, seed) before a file's tests and releases the model after them. */
export function engineTestBed(preset: PresetName, seed: number, image: [number, number, number]): EngineTestBed {
  const bed = { engine: (options: EngineOptions) => new Engine(bed.model, bed.tokenizer, bed.files.config, options) } as EngineTestBed;
  before(async () => {
    Object.assign(bed, await openTestModel(preset, seed), { image: await testImage(...image) });
  });
  after(() => bed.model.release());
  return bed;
}

/** testImagePng decoded, with no pixel limit. */
export async function testImage(width: number, height: number, seed = 0): Promise<RgbImage> {
  return decodeImage(await testImagePng(width, height, seed), { maxPixels: 1e8 });
}

/** A deterministic, non-trivial RGB test image (gradients + seeded noise) as PNG bytes. */
export async function testImagePng(width: number, height: number, seed = 0): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let s = seed * 2654435761 + 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = s >>> 24;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export const dataUrl = (png: Buffer, mime = 'image/png') => `data:${mime};base64,${png.toString('base64')}`;

export async function startTestServer(overrides: Partial<ServerConfig> = {}): Promise<RunningServer> {
  const model = overrides.model ?? (await testModel());
  return startServer(resolveConfig({ port: 0, grpcPort: -1, host: '127.0.0.1', logLevel: 'silent', threads: 1, ...overrides, model }, {}));
}

/** Admin token the training-jobs tests start servers with, and the headers that carry it. */
export const ADMIN_TOKEN = 'admin-secret';
export const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

/** Polls a training job (GET url) until `pred` holds; returns the job. */
export async function waitForJob(url: string, pred: (job: any) => boolean, timeoutMs = 60_000): Promise<any> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const job = (await (await fetch(url, { headers: adminHeaders })).json()) as any;
    if (pred(job)) return job;
    if (Date.now() > end) throw new Error(`timed out; job: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Resolves once `condition` holds, checking every few milliseconds. No deadline of its own: a
 * condition that never comes fails on the test runner's per-test timeout, so no test asserts a
 * machine's speed.
 */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}
