import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromConfigJson, toConfigJson, toPreprocessorJson, type ModelConfig } from './config.js';
import { buildDecoderGraph, buildEmbedGraph, buildKvPoolDecoderGraph } from './architecture/text-decoder.js';
import { buildVisionGraph } from './architecture/vision-encoder.js';
import { serializeModel } from './onnx/serialize.js';
import type { Graph } from './onnx/ir.js';
import { presetConfig, type PresetName } from './presets.js';
import { applyWeightPrecision, type QuantizedWeight, type WeightDtype } from './onnx/weight-precision.js';
import { resolveModelDir, type ModelCacheOptions } from './hf/model-cache.js';
import { buildTokenizerFiles } from './tokenizer/tokenizer-files.js';
import { initWeights, weightLookup, type Weights } from './weights.js';

export const ONNX_FILES = {
  vision: 'onnx/vision_encoder.onnx',
  embed: 'onnx/embed_tokens.onnx',
  decoder: 'onnx/decoder_model_merged.onnx',
  /** Our own fast decoder (pooled KV cache read in place); absent in external exports. */
  decoderKvPool: 'onnx/decoder_kvpool.onnx',
  /** Layout version of decoder_kvpool.onnx (same inputs and outputs across versions; newer is faster). */
  decoderKvPoolVersion: 'onnx/decoder_kvpool.version',
} as const;

/** Bumped when buildKvPoolDecoderGraph changes, so a generated default model is re-exported. */
export const KVPOOL_GRAPH_VERSION = '4';

export interface ModelFiles {
  dir: string;
  config: ModelConfig;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfigJson: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
  /** Name shown in /v1/models (config.json `_name_or_path`, else the folder name). */
  name: string;
}

export function modelGraphs(config: ModelConfig): Graph[] {
  return [buildEmbedGraph(config.text), buildDecoderGraph(config.text), buildVisionGraph(config.vision)];
}

export type GraphFile = 'vision' | 'embed' | 'decoder' | 'decoderKvPool';

type GraphsByFile = Record<(typeof ONNX_FILES)[GraphFile], Graph>;

/** How each graph of a model directory is built, keyed by its path in it. */
const GRAPH_BUILDERS: Record<(typeof ONNX_FILES)[GraphFile], (config: ModelConfig) => Graph> = {
  [ONNX_FILES.embed]: (c) => buildEmbedGraph(c.text),
  [ONNX_FILES.decoder]: (c) => buildDecoderGraph(c.text),
  [ONNX_FILES.decoderKvPool]: (c) => buildKvPoolDecoderGraph(c.text),
  [ONNX_FILES.vision]: (c) => buildVisionGraph(c.vision),
} as Record<(typeof ONNX_FILES)[GraphFile], (config: ModelConfig) => Graph>;

function graphsByFile(config: ModelConfig): GraphsByFile {
  return Object.fromEntries(Object.entries(GRAPH_BUILDERS).map(([file, build]) => [file, build(config)])) as GraphsByFile;
}

/**
 * The graphs of a model converted from a checkpoint, by file, at a weight precision (the patch
 * embedding stays fp32: it is small and sees raw pixels), and the MatMul weights it quantized.
 */
export function importedModelGraphs(config: ModelConfig, dtype: WeightDtype): { graphs: GraphsByFile; quantized: Map<string, QuantizedWeight> } {
  const graphs = graphsByFile(config);
  const quantized = new Map<string, QuantizedWeight>();
  for (const g of Object.values(graphs)) {
    for (const [name, q] of applyWeightPrecision(g, dtype, (param) => param !== 'visual.patch_embed.proj.weight')) quantized.set(name, q);
  }
  return { graphs, quantized };
}

/** One ONNX graph of a model with these weights, serialized (the file a model directory keeps it in). */
export function serializeModelGraph(config: ModelConfig, weights: Weights, file: (typeof ONNX_FILES)[GraphFile]): Uint8Array {
  return serializeModel(GRAPH_BUILDERS[file](config), weightLookup(weights, config.text));
}

/** Every ONNX graph of a model with these weights, serialized, keyed by its path in a model directory. */
export function serializeModelGraphs(config: ModelConfig, weights: Weights): Record<(typeof ONNX_FILES)[GraphFile], Uint8Array> {
  const lookup = weightLookup(weights, config.text);
  return Object.fromEntries(Object.entries(graphsByFile(config)).map(([file, g]) => [file, serializeModel(g, lookup)])) as Record<(typeof ONNX_FILES)[GraphFile], Uint8Array>;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/** Write to a temp name then rename, so a crash never leaves a half-written file in place. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Writes a servable model directory (the transformers.js Qwen2.5-VL layout) for given config and weights. */
export async function writeModelDir(
  dir: string, config: ModelConfig, weights: Weights,
  tokenizer: { tokenizerJson: Record<string, unknown>; tokenizerConfigJson: Record<string, unknown> }, name: string,
): Promise<void> {
  await mkdir(join(dir, 'onnx'), { recursive: true });
  for (const [file, bytes] of Object.entries(serializeModelGraphs(config, weights))) await writeAtomic(join(dir, file), bytes);
  await writeAtomic(join(dir, ONNX_FILES.decoderKvPoolVersion), `${KVPOOL_GRAPH_VERSION}\n`);
  await writeAtomic(join(dir, 'config.json'), json({ _name_or_path: name, ...toConfigJson(config) }));
  await writeAtomic(join(dir, 'preprocessor_config.json'), json(toPreprocessorJson(config.processor)));
  await writeAtomic(
    join(dir, 'generation_config.json'),
    json({ eos_token_id: config.eos_token_ids, pad_token_id: config.pad_token_id, do_sample: false }),
  );
  await writeAtomic(join(dir, 'tokenizer.json'), json(tokenizer.tokenizerJson));
  await writeAtomic(join(dir, 'tokenizer_config.json'), json(tokenizer.tokenizerConfigJson));
}

/** `pixelreasoner model init`: a randomly initialised model, byte-identical for the same preset and seed. */
export async function initModelDir(dir: string, opts: { preset?: PresetName; seed?: number } = {}): Promise<ModelConfig> {
  const preset = opts.preset ?? 'tiny';
  const seed = opts.seed ?? 0;
  const tok = buildTokenizerFiles();
  const ids = tok.specialIds;
  const config = presetConfig(
    preset,
    {
      image_token_id: ids['<|image_pad|>']!,
      video_token_id: ids['<|video_pad|>']!,
      vision_start_token_id: ids['<|vision_start|>']!,
      vision_end_token_id: ids['<|vision_end|>']!,
      eos_token_ids: [ids['<|im_end|>']!, ids['<|endoftext|>']!],
      pad_token_id: ids['<|endoftext|>']!,
    },
    tok.vocabSize,
  );
  const weights = initWeights(modelGraphs(config), seed);
  await writeModelDir(dir, config, weights, tok, `pixel-reasoner-${preset}-random-seed${seed}`);
  return config;
}

/**
 * Reads a model directory in the project's layout, or a Hugging Face snapshot, which is converted
 * (once, into the cache; see resolveModelDir) and loaded from there.
 */
export async function loadModelFiles(dir: string, cache: ModelCacheOptions = {}): Promise<ModelFiles> {
  const modelDir = await resolveModelDir(dir, cache);
  const read = async (f: string) => JSON.parse(await readFile(join(modelDir, f), 'utf8')) as Record<string, any>;
  const [configJson, pre, tokenizerJson, tokenizerConfigJson] = await Promise.all([
    read('config.json'), read('preprocessor_config.json'), read('tokenizer.json'), read('tokenizer_config.json'),
  ]);
  const generationConfig = await read('generation_config.json').catch(() => ({}));
  const name = (configJson._name_or_path as string | undefined) ?? dir.split('/').filter(Boolean).pop() ?? 'model';
  return { dir: modelDir, config: fromConfigJson(configJson, pre, generationConfig), tokenizerJson, tokenizerConfigJson, generationConfig, name };
}
