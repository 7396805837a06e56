import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Engine } from '../../../src/engine/engine.js';
import { OnnxModel } from '../../../src/engine/onnx-model.js';
import { GREEDY } from '../../../src/engine/sampler.js';
import { ChatTokenizer } from '../../../src/model/chat-tokenizer.js';
import { fromConfigJson } from '../../../src/model/config.js';
import { resolveModelDir } from '../../../src/model/hf/model-cache.js';
import { importSnapshot } from '../../../src/model/hf/import-snapshot.js';
import { loadModelFiles } from '../../../src/model/model-dir.js';
import { loadWeights } from '../../../src/model/load-weights.js';
import type { WeightDtype } from '../../../src/model/onnx/weight-precision.js';
import { decodeImage } from '../../../src/tools/image.js';
import { testImagePng } from '../../helpers.js';
import { writeHfSnapshot } from './hf-snapshot.js';

const root = mkdtempSync(join(tmpdir(), 'prs-hf-import-'));
const QUESTION = 'What color is the small circle?';

/** Greedy tokens and their log-probabilities for one image prompt (224x168: no resize, so both preprocessors agree). */
async function generate(runner: OnnxModel, files: { tokenizerJson: Record<string, unknown>; tokenizerConfigJson: Record<string, unknown>; config: any }) {
  const engine = new Engine(runner, new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson), files.config, { maxModelLen: 1024 });
  const image = await decodeImage(await testImagePng(224, 168, 3), { maxPixels: 1e8 });
  const r = await engine.generate({
    messages: [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: QUESTION }] }],
    sampling: GREEDY, maxTokens: 12, tools: [], maxToolCalls: 0, stop: [], logprobs: 0, ignoreEos: true,
  });
  return { tokens: r.tokenIds, logprobs: r.logprobs!.map((l) => l.logprob), promptIds: r.promptTokenIds };
}

async function imported(name: string, dtype: WeightDtype, opts: Parameters<typeof writeHfSnapshot>[1] = {}) {
  const snapshot = join(root, name);
  const reference = await writeHfSnapshot(snapshot, opts);
  const dir = await resolveModelDir(snapshot, { cacheDir: join(root, `cache-${name}`), dtype, log: () => {} });
  return { snapshot, dir, reference };
}

describe('a Hugging Face snapshot of our own model, imported, computes what our graphs compute with its weights', () => {
  for (const opts of [{ layout: 'legacy' as const, dtype: 'BF16' as const, shards: 3 }, { layout: 'nested' as const, dtype: 'F32' as const, shards: 1 }, { layout: 'legacy' as const, dtype: 'F16' as const, shards: 2 }]) {
    test(`${opts.layout} config, ${opts.dtype}, ${opts.shards} shard(s): same greedy tokens, log-probabilities within 1e-4`, async () => {
      const { dir, reference } = await imported(`${opts.layout}-${opts.dtype}`, 'fp32', opts);
      const files = await loadModelFiles(dir);
      const ours = await OnnxModel.load(files, { threads: 1 });
      const theirs = await OnnxModel.fromWeights(reference.config, reference.weights, { threads: 1 });
      try {
        const a = await generate(ours, files);
        const b = await generate(theirs, { ...files, config: reference.config });
        assert.deepEqual(a.promptIds, b.promptIds);
        assert.deepEqual(a.tokens, b.tokens);
        const worst = Math.max(...a.logprobs.map((lp, i) => Math.abs(lp - b.logprobs[i]!)));
        assert.ok(worst < 1e-4, `log-probabilities differ by ${worst}`);
      } finally {
        await Promise.all([ours.release(), theirs.release()]);
      }
    });
  }

  test('the cache: a second resolve reuses the conversion; another precision gets its own entry', async () => {
    const snapshot = join(root, 'cache-reuse');
    await writeHfSnapshot(snapshot);
    const cacheDir = join(root, 'cache-reuse-cache');
    const first = await resolveModelDir(snapshot, { cacheDir, dtype: 'q8', log: () => {} });
    const stamp = statSync(join(first, 'import.json')).mtimeMs;
    assert.equal(await resolveModelDir(snapshot, { cacheDir, dtype: 'q8', log: () => {} }), first);
    assert.equal(statSync(join(first, 'import.json')).mtimeMs, stamp, 'the cached conversion was redone');
    const other = await resolveModelDir(snapshot, { cacheDir, dtype: 'q4', log: () => {} });
    assert.notEqual(other, first);
    assert.deepEqual(readdirSync(cacheDir).sort(), [first, other].map((d) => d.split('/').pop()).sort());
  });
});

describe('training from an imported snapshot', () => {
  test('loadWeights reads a conversion\'s external-data weights back exactly (fp32 and fp16) and refuses quantized ones', async () => {
    const snapshot = join(root, 'train-weights');
    const { weights: reference } = await writeHfSnapshot(snapshot);
    for (const dtype of ['fp32', 'fp16'] as const) {
      const dir = await resolveModelDir(snapshot, { cacheDir: join(root, 'cache-train'), dtype, log: () => {} });
      const loaded = await loadWeights(dir);
      assert.deepEqual([...loaded.keys()].sort(), [...reference.keys()].sort());
      for (const [name, w] of reference) {
        const got = loaded.get(name)!.data;
        // fp32 holds BF16 values exactly; fp16 too, except below its normal range (6.1e-5), where it has fewer bits.
        const worst = Math.max(...w.data.map((x, i) => Math.abs(got[i]! - x) - (dtype === 'fp32' ? 0 : 6e-8)));
        assert.ok(worst <= 0, `${dtype}: ${name} differs by ${worst}`);
      }
    }
    const q4 = await resolveModelDir(snapshot, { cacheDir: join(root, 'cache-train'), dtype: 'q4', log: () => {} });
    await assert.rejects(loadWeights(q4), /is quantized; training needs fp32 or fp16 weights/);
  });
});

describe('where a conversion is written', () => {
  test('model import refuses the snapshot itself and a folder of other files; a trailing slash works; a rerun replaces its own output', async () => {
    const snapshot = join(root, 'out-checks');
    await writeHfSnapshot(snapshot);
    await assert.rejects(importSnapshot(snapshot, snapshot, 'q4'), /holds the snapshot being converted/);
    const occupied = join(root, 'occupied');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'precious.txt'), 'keep me');
    await assert.rejects(importSnapshot(snapshot, occupied, 'q4'), /exists and is not a converted model/);
    assert.equal(readFileSync(join(occupied, 'precious.txt'), 'utf8'), 'keep me');
    const out = join(root, 'out-ok');
    await importSnapshot(snapshot, `${out}/`, 'q4');
    await importSnapshot(snapshot, out, 'q8');
    assert.equal(JSON.parse(readFileSync(join(out, 'import.json'), 'utf8')).dtype, 'q8');
    assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('out-ok.tmp-')), []);
  });

  test('two conversions of one snapshot at once share one result, and leave no temporary folders', async () => {
    const snapshot = join(root, 'concurrent');
    await writeHfSnapshot(snapshot);
    const cacheDir = join(root, 'cache-concurrent');
    const [a, b] = await Promise.all([0, 1].map(() => resolveModelDir(snapshot, { cacheDir, dtype: 'q4', log: () => {} })));
    assert.equal(a, b);
    assert.deepEqual(readdirSync(cacheDir), [a!.split('/').pop()]);
    assert.ok(existsSync(join(a!, 'onnx/weights.onnx_data')));
  });
});

describe('weight precision: fp16, q8 and q4 stay close to fp32 on the same prompt', () => {
  test('top-1 agreement and log-probability error shrink with more bits', async () => {
    const results: Record<string, { tokens: number[]; logprobs: number[] }> = {};
    for (const dtype of ['fp32', 'fp16', 'q8', 'q4'] as const) {
      const snapshot = join(root, 'precision');
      if (!existsSync(snapshot)) await writeHfSnapshot(snapshot);
      const dir = await resolveModelDir(snapshot, { cacheDir: join(root, 'cache-precision'), dtype, log: () => {} });
      const files = await loadModelFiles(dir);
      const runner = await OnnxModel.load(files, { threads: 1 });
      results[dtype] = await generate(runner, files);
      await runner.release();
    }
    const err = (d: string) => Math.abs(results[d]!.logprobs[0]! - results.fp32!.logprobs[0]!);
    // The first token's log-probability: same prompt, only the weights' precision differs.
    assert.ok(err('fp16') < 1e-2, `fp16 error ${err('fp16')}`);
    assert.ok(err('q8') < 5e-2, `q8 error ${err('q8')}`);
    assert.ok(err('q4') < 0.5, `q4 error ${err('q4')}`);
    assert.equal(results.fp16!.tokens[0], results.fp32!.tokens[0]);
  });
});

describe('config.json layouts', () => {
  test('the flat legacy layout and transformers 5.x nested one read to the same config', async () => {
    const a = join(root, 'layout-legacy');
    const b = join(root, 'layout-nested');
    await writeHfSnapshot(a, { layout: 'legacy' });
    await writeHfSnapshot(b, { layout: 'nested' });
    const read = (d: string) => fromConfigJson(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')), {}, JSON.parse(readFileSync(join(d, 'generation_config.json'), 'utf8')));
    assert.deepEqual(read(a), read(b));
  });
});

describe('bad checkpoints: a clear error naming the file or field, and nothing left in the cache', () => {
  const cases: { name: string; break: (dir: string) => void; error: RegExp }[] = [
    { name: 'a shard named by the index is missing', break: (d) => removeFile(join(d, 'model-00002-of-00002.safetensors')), error: /model-00002-of-00002\.safetensors: file is missing/ },
    { name: 'a truncated shard', break: (d) => truncate(join(d, 'model-00001-of-00002.safetensors')), error: /model-00001-of-00002\.safetensors: truncated/ },
    { name: 'an unknown dtype', break: (d) => rewriteShardDtype(d, 'I8'), error: /has dtype I8; BF16, F16 and F32 are supported/ },
    { name: 'Qwen2-VL', break: (d) => editConfig(d, (c) => (c.model_type = 'qwen2_vl')), error: /Qwen2-VL \(model_type "qwen2_vl"\) is not supported/ },
    { name: 'Qwen3-VL', break: (d) => editConfig(d, (c) => (c.model_type = 'qwen3_vl')), error: /Qwen3-VL \(model_type "qwen3_vl"\) is not supported/ },
    { name: 'a config field missing', break: (d) => editConfig(d, (c) => delete c.num_attention_heads), error: /config\.json: num_attention_heads must be a number/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const dir = join(root, `bad-${c.name.replace(/\W+/g, '-')}`);
      await writeHfSnapshot(dir, { shards: 2 });
      c.break(dir);
      const cacheDir = join(root, `bad-cache-${c.name.replace(/\W+/g, '-')}`);
      await assert.rejects(resolveModelDir(dir, { cacheDir, dtype: 'q4', log: () => {} }), c.error);
      assert.deepEqual(existsSync(cacheDir) ? readdirSync(cacheDir) : [], [], 'the failed conversion left files in the cache');
    });
  }

  test('a tensor of the wrong shape names the tensor, its file and both shapes', async () => {
    const dir = join(root, 'bad-shape');
    await writeHfSnapshot(dir, {}, ({ tensors }) => {
      const t = tensors.get('model.layers.0.mlp.down_proj.weight')!;
      tensors.set('model.layers.0.mlp.down_proj.weight', { shape: [t.shape[1]!, t.shape[0]!], data: t.data });
    });
    await assert.rejects(resolveModelDir(dir, { cacheDir: join(root, 'bad-shape-cache'), dtype: 'fp32', log: () => {} }),
      /model\.layers\.0\.mlp\.down_proj\.weight: shape \[\d+,\d+\] in model\.safetensors, expected \[\d+,\d+\]/);
  });
});

function removeFile(path: string): void {
  rmSync(path);
}

function truncate(path: string): void {
  truncateSync(path, statSync(path).size - 100);
}

function editConfig(dir: string, edit: (c: Record<string, any>) => void): void {
  const path = join(dir, 'config.json');
  const c = JSON.parse(readFileSync(path, 'utf8'));
  edit(c);
  writeFileSync(path, JSON.stringify(c));
}

/** Rewrites the first shard with one tensor declared in another dtype (same byte size, so only the dtype is wrong). */
function rewriteShardDtype(dir: string, dtype: string): void {
  const path = join(dir, 'model-00001-of-00002.safetensors');
  const buf = readFileSync(path);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString());
  const name = Object.keys(header).find((k) => k !== '__metadata__')!;
  header[name].dtype = dtype;
  const json = Buffer.from(JSON.stringify(header).padEnd(len, ' '));
  writeFileSync(path, Buffer.concat([buf.subarray(0, 8), json.subarray(0, len), buf.subarray(8 + len)]));
}
