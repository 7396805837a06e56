import { ChatTokenizer } from '../model/chat-tokenizer.js';
import type { ModelCacheOptions } from '../model/hf/model-cache.js';
import { loadModelFiles, type ModelFiles } from '../model/model-dir.js';
import type { Weights } from '../model/weights.js';
import type { EngineOptions } from './engine-config.js';
import { Engine } from './engine.js';
import { OnnxModel, type OnnxModelOptions } from './onnx-model.js';

export interface OpenEngineOptions extends Partial<EngineOptions>, OnnxModelOptions {
  /** Serve these weights instead of the directory's (an RL policy after a step, an ablation). */
  weights?: Weights;
  /** Where and at what precision a Hugging Face snapshot is converted. */
  cache?: ModelCacheOptions;
}

/**
 * Opens an engine on a model directory or Hugging Face snapshot (converted on first use) for the
 * server, the CLI, evaluation and RL rollouts. The context length defaults to the model's and is
 * capped by it; every other setting defaults as in ENGINE_DEFAULTS. `engine.release()` frees it.
 */
export async function openEngine(source: string | ModelFiles, opts: OpenEngineOptions = {}): Promise<Engine> {
  const { weights, cache, threads, executionProviders, forceStandard, ...engineOptions } = opts;
  const files = typeof source === 'string' ? await loadModelFiles(source, cache) : source;
  const modelOptions = { threads, executionProviders, forceStandard };
  const model = weights ? await OnnxModel.fromWeights(files.config, weights, modelOptions) : await OnnxModel.load(files, modelOptions);
  const maxModelLen = Math.min(engineOptions.maxModelLen ?? Infinity, files.config.text.max_position_embeddings);
  const tokenizer = new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson);
  return new Engine(model, tokenizer, files.config, { ...engineOptions, maxModelLen });
}
