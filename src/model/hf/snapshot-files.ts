import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, fromConfigJson, type ModelConfig } from '../config.js';

/** The small files of a Hugging Face snapshot, read and checked before any weight is touched. */
export interface SnapshotFiles {
  configJson: Record<string, any>;
  preprocessorJson: Record<string, any>;
  generationConfig: Record<string, any>;
  tokenizerJson: Record<string, unknown>;
  /** tokenizer_config.json with `chat_template` filled in from wherever the snapshot keeps it. */
  tokenizerConfigJson: Record<string, unknown>;
  config: ModelConfig;
}

async function readJson(dir: string, file: string, required: boolean): Promise<Record<string, any> | undefined> {
  const path = join(dir, file);
  if (!existsSync(path)) {
    if (required) throw new ConfigError(`${file}: missing from ${dir}`);
    return undefined;
  }
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, any>;
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * The chat template: `chat_template.jinja` (transformers 5.x), `chat_template.json` (the Hub's
 * Qwen2.5-VL), or `chat_template` inside tokenizer_config.json (older snapshots), in that order.
 */
async function chatTemplate(dir: string, tokenizerConfig: Record<string, any>): Promise<string> {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFile(jinja, 'utf8');
  const json = await readJson(dir, 'chat_template.json', false);
  if (json && typeof json.chat_template === 'string') return json.chat_template;
  const inline = tokenizerConfig.chat_template;
  if (typeof inline === 'string') return inline;
  // A list of named templates (transformers' multi-template form): the default one.
  if (Array.isArray(inline)) {
    const named = (inline as { name: string; template: string }[]).find((t) => t.name === 'default');
    if (named) return named.template;
  }
  throw new ConfigError('no chat template: expected chat_template.jinja, chat_template.json or tokenizer_config.json "chat_template"');
}

export async function readSnapshotFiles(dir: string): Promise<SnapshotFiles> {
  const configJson = (await readJson(dir, 'config.json', true))!;
  const preprocessorJson = (await readJson(dir, 'preprocessor_config.json', false)) ?? {};
  const generationConfig = (await readJson(dir, 'generation_config.json', false)) ?? {};
  const tokenizerJson = (await readJson(dir, 'tokenizer.json', true))!;
  const tokenizerConfig = (await readJson(dir, 'tokenizer_config.json', true))!;
  const config = fromConfigJson(configJson, preprocessorJson, generationConfig, 'transformers');
  const tokenizerConfigJson = { ...tokenizerConfig, chat_template: await chatTemplate(dir, tokenizerConfig) };
  return { configJson, preprocessorJson, generationConfig, tokenizerJson, tokenizerConfigJson, config };
}
