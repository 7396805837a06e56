import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { toConfigJson, toPreprocessorJson, type ModelConfig } from '../config.js';
import { KVPOOL_GRAPH_VERSION, ONNX_FILES, importedModelGraphs } from '../model-dir.js';
import type { ExternalTensor, Graph } from '../onnx/ir.js';
import { serializeModel } from '../onnx/serialize.js';
import { quantizeBlockwise, quantizedPartOf, type QuantizedWeight, type WeightDtype } from '../onnx/weight-precision.js';
import { toFloat16 } from '../safetensors.js';
import { writeSynced } from '../../util/files.js';
import { IO_CHUNK, readCheckpointTensors, readRange, weightFiles } from './checkpoint-tensors.js';
import { readSnapshotFiles, type SnapshotFiles } from './snapshot-files.js';
import { WeightSource } from './weight-source.js';

/** Bumped when the conversion's output changes for the same input, so cached conversions are redone. */
export const CONVERTER_VERSION = '3';

/** The one external-data file every graph of a converted model reads its weights from. */
export const WEIGHTS_FILE = 'onnx/weights.onnx_data';

/** Offsets in the data file are multiples of this, so ONNX Runtime can map tensors in place. */
const ALIGN = 65536;

export interface ImportProgress {
  done: number;
  total: number;
  tensor: string;
}

export interface ImportReport {
  dtype: WeightDtype;
  seconds: number;
  /** Peak resident set size of this process during the conversion, bytes. */
  peakRssBytes: number;
  weightBytes: number;
  tensors: number;
}

/**
 * The cache key of a snapshot: what it is (config, tokenizer, template, every shard's header and
 * size, 64 KiB samples of each shard's data), the precision and the converter's version. Hashing
 * every byte of a 15 GB checkpoint would cost every start seconds; a changed tensor changes its
 * shard's samples or header in practice, and a re-downloaded snapshot always its header.
 */
export async function snapshotKey(dir: string, dtype: WeightDtype): Promise<string> {
  const h = createHash('sha256').update(`pixelreasoner-import ${CONVERTER_VERSION} ${KVPOOL_GRAPH_VERSION} ${dtype}\n`);
  for (const f of ['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.json', 'chat_template.jinja']) {
    const path = join(dir, f);
    if (existsSync(path)) h.update(f).update(await readFile(path));
  }
  for (const file of await weightFiles(dir)) {
    if (!existsSync(file)) continue; // reported by the conversion, with the file's name
    const size = (await stat(file)).size;
    h.update(`${basename(file)} ${size}\n`);
    const fh = await open(file, 'r');
    try {
      const samples = 16;
      for (let i = 0; i < samples; i++) {
        const at = Math.floor((size * i) / samples);
        h.update(await readRange(fh, at, Math.min(65536, size - at)));
      }
    } finally {
      await fh.close();
    }
  }
  return h.digest('hex').slice(0, 24);
}

/** Appends tensors to the external-data file at aligned offsets, each name once across all graphs. */
class DataFileWriter {
  private offset = 0;
  readonly refs = new Map<string, ExternalTensor>();

  constructor(private readonly fh: FileHandle, private readonly location: string) {}

  async append(name: string, dtype: ExternalTensor['dtype'], dims: number[], data: ArrayBufferView): Promise<void> {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.offset = Math.ceil(this.offset / ALIGN) * ALIGN;
    let done = 0;
    // At most 1 GiB per call: Node's file writes take int32 lengths (a 7B's fp32 LM head is 2.2 GB).
    while (done < bytes.length) done += (await this.fh.write(bytes, done, Math.min(bytes.length - done, IO_CHUNK), this.offset + done)).bytesWritten;
    this.refs.set(name, { dtype, dims, external: { location: this.location, offset: this.offset, length: bytes.length } });
    this.offset += bytes.length;
  }

  get bytes(): number {
    return this.offset;
  }
}

type ParamSpecs = Map<string, { dims: number[]; dtype?: ExternalTensor['dtype'] }>;

/** Every parameter of the graphs once, with the declaration the graph gives it. */
function paramsOf(graphs: Graph[]): ParamSpecs {
  const all: ParamSpecs = new Map();
  for (const g of graphs) for (const [name, p] of g.params) all.set(name, { dims: p.dims, dtype: p.dtype });
  return all;
}

/** Writes one parameter (in the encoding its graph declares) to the data file. */
async function writeParam(out: DataFileWriter, source: WeightSource, name: string, all: ParamSpecs, quantized: Map<string, QuantizedWeight>): Promise<void> {
  const spec = all.get(name)!;
  const part = quantizedPartOf(name);
  if (part) {
    if (out.refs.has(name)) return;
    // The three parts come from one quantization of the [N, K] weight: written together.
    const { n, k, bits } = quantized.get(part.source)!;
    const parts = quantizeBlockwise(await source.outIn(part.source, [k, n]), n, k, bits);
    await out.append(`${part.source}.qweight`, 'uint8', all.get(`${part.source}.qweight`)!.dims, parts.q);
    await out.append(`${part.source}.scales`, 'float32', [parts.scales.length], parts.scales);
    await out.append(`${part.source}.qzeros`, 'uint8', [parts.zeros.length], parts.zeros);
    return;
  }
  const data = await source.ours(name, spec.dims);
  if (spec.dtype === 'float16') await out.append(name, 'float16', spec.dims, toFloat16(data));
  else await out.append(name, 'float32', spec.dims, data);
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/**
 * Converts a Hugging Face Qwen2.5-VL snapshot into the project's ONNX layout in `outDir`:
 * the four graphs with their weights in one external-data file, config, tokenizer and template.
 * Tensors stream one at a time from the shards (read by byte range) to the data file, so memory
 * holds at most one tensor and its encoding. Written to a temporary folder renamed into place at
 * the end: a failure or a crash leaves nothing at `outDir`.
 */
export async function importSnapshot(
  snapshotDir: string, outDirArg: string, dtype: WeightDtype, onProgress?: (p: ImportProgress) => void, opts: { keepExisting?: boolean } = {},
): Promise<ImportReport> {
  const outDir = resolve(outDirArg);
  checkOutDir(resolve(snapshotDir), outDir);
  const started = Date.now();
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  // Unique per conversion (two in one process, or two processes with one pid in containers).
  const tmp = `${outDir}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const snapshot = await readSnapshotFiles(snapshotDir);
    // Served with the reference's pixel-reasoning prompt and the memory-lean vision graph (images of 20,000 patches).
    const config: ModelConfig = { ...snapshot.config, pixel_reasoning_prompt: 'reference', vision: { ...snapshot.config.vision, per_input_attention: true } };
    const files = { ...snapshot, config };
    const tensors = await readCheckpointTensors(snapshotDir);
    const source = new WeightSource(tensors, config);
    const { graphs, quantized } = importedModelGraphs(config, dtype);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(join(tmp, 'onnx'), { recursive: true });
    const fh = await open(join(tmp, WEIGHTS_FILE), 'w');
    const out = new DataFileWriter(fh, basename(WEIGHTS_FILE));
    const all = paramsOf(Object.values(graphs));
    const params = [...all.keys()].sort();
    try {
      for (const [i, name] of params.entries()) {
        onProgress?.({ done: i, total: params.length, tensor: name });
        await writeParam(out, source, name, all, quantized);
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      onProgress?.({ done: params.length, total: params.length, tensor: '' });
      await fh.sync();
    } finally {
      await fh.close();
    }
    const lookup = (name: string) => {
      const ref = out.refs.get(name);
      if (!ref) throw new Error(`internal: weight ${name} was not written`);
      return ref;
    };
    for (const [file, graph] of Object.entries(graphs)) await writeSynced(join(tmp, file), serializeModel(graph, lookup));
    await writeModelMetadata(tmp, files, snapshotDir, dtype);
    const report: ImportReport = { dtype, seconds: (Date.now() - started) / 1000, peakRssBytes: peak, weightBytes: out.bytes, tensors: params.length };
    await writeSynced(join(tmp, 'import.json'), json({ source: snapshotDir, converter_version: CONVERTER_VERSION, ...report }));
    await publish(tmp, outDir, opts.keepExisting ?? false);
    return report;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    clearInterval(sampler);
  }
}

/** Marks a conversion in progress: `<out>.tmp-<pid>-<random>` beside its destination. */
export const TMP_MARK = '.tmp-';

/**
 * Refuses destinations a conversion must not replace: the snapshot itself (or a folder holding it),
 * and a folder with other files in it (a conversion's own output, with its import.json, may be redone).
 */
function checkOutDir(snapshotDir: string, outDir: string): void {
  const inside = (a: string, b: string) => a === b || a.startsWith(b + sep);
  if (inside(snapshotDir, outDir)) throw new Error(`--out ${outDir} holds the snapshot being converted; choose another folder`);
  if (existsSync(outDir) && readdirSync(outDir).length > 0 && !existsSync(join(outDir, 'import.json'))) {
    throw new Error(`--out ${outDir} exists and is not a converted model; choose an empty or new folder`);
  }
}

/**
 * Moves a finished conversion into place. An earlier conversion already there is replaced only
 * after the new one is complete (renamed aside, then removed). With `keepExisting` (a cache entry,
 * whose path may already have been handed out), one that another process published meanwhile is
 * kept and ours dropped.
 */
async function publish(tmp: string, outDir: string, keepExisting: boolean): Promise<void> {
  if (keepExisting && existsSync(join(outDir, 'import.json'))) {
    await rm(tmp, { recursive: true, force: true });
    return;
  }
  // Named like a temporary folder of this process, so a crash before its removal leaves it to the abandoned-folder cleanup.
  const aside = `${outDir}${TMP_MARK}${process.pid}-old-${randomBytes(4).toString('hex')}`;
  const replacing = existsSync(outDir);
  if (replacing) await rename(outDir, aside);
  await rename(tmp, outDir);
  if (replacing) await rm(aside, { recursive: true, force: true });
}

async function writeModelMetadata(dir: string, files: SnapshotFiles, snapshotDir: string, dtype: WeightDtype): Promise<void> {
  const name = (files.configJson._name_or_path as string | undefined) || basename(snapshotDir);
  // Resizing as transformers' Qwen2VLImageProcessor does (PIL bicubic): the processor the checkpoint was trained with.
  const processor = { ...files.config.processor, resize_backend: 'pil' as const };
  await writeSynced(join(dir, 'config.json'), json({ _name_or_path: name, ...toConfigJson(files.config), weight_dtype: dtype }));
  await writeSynced(join(dir, 'preprocessor_config.json'), json(toPreprocessorJson(processor)));
  await writeSynced(join(dir, 'generation_config.json'), json(files.generationConfig));
  await writeSynced(join(dir, 'tokenizer.json'), json(files.tokenizerJson));
  await writeSynced(join(dir, 'tokenizer_config.json'), json(files.tokenizerConfigJson));
  await writeSynced(join(dir, ONNX_FILES.decoderKvPoolVersion), `${KVPOOL_GRAPH_VERSION}\n`);
}
