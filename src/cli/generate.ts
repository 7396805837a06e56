import { readFile } from 'node:fs/promises';
import { Engine } from '../engine/engine.js';
import { ModelRunner } from '../engine/model-runner.js';
import { GREEDY } from '../engine/sampler.js';
import type { ChatMessage, ContentPart } from '../engine/types.js';
import { ChatTokenizer } from '../model/chat-tokenizer.js';
import { resolveDefaultModel } from '../model/default-model.js';
import { loadModelFiles } from '../model/model-dir.js';
import { decodeImage } from '../tools/image.js';
import { publicStep } from '../server/request-conversion.js';

export interface GenerateArgs {
  model?: string;
  image?: string;
  prompt: string;
  maxTokens: number;
  noTools: boolean;
  json: boolean;
  temperature?: number;
  seed?: number;
  /** Text of a partial assistant message to continue (its trailing tool call runs first). */
  assistant?: string;
}

/** `pixelreasoner generate`: one request through the engine, without a server. */
export async function runGenerate(a: GenerateArgs): Promise<void> {
  const files = await loadModelFiles(a.model ?? (await resolveDefaultModel((m) => console.error(m))));
  const runner = await ModelRunner.load(files);
  const engine = new Engine(runner, new ChatTokenizer(files.tokenizerJson, files.tokenizerConfigJson), files.config, { maxModelLen: files.config.text.max_position_embeddings });
  const content: ContentPart[] = [];
  if (a.image) content.push({ type: 'image', image: await decodeImage(await readFile(a.image), { maxPixels: 100_000_000 }) });
  content.push({ type: 'text', text: a.prompt });
  const messages: ChatMessage[] = [{ role: 'user', content }];
  if (a.assistant !== undefined) messages.push({ role: 'assistant', content: a.assistant });
  const result = await engine.generate(
    {
      messages,
      sampling: a.temperature !== undefined ? { ...GREEDY, temperature: a.temperature, seed: a.seed } : GREEDY,
      maxTokens: a.maxTokens,
      tools: a.noTools ? [] : ['crop_image_normalized'],
      maxToolCalls: 4,
      stop: [],
    },
    { onEvent: a.json ? undefined : (e) => (e.type === 'text' ? process.stdout.write(e.delta) : e.type === 'tool' ? process.stdout.write(`\n[tool] ${JSON.stringify(publicStep(e.step))}\n`) : undefined) },
  );
  await runner.release();
  if (a.json) {
    console.log(JSON.stringify({ prompt_token_ids: result.promptTokenIds, token_ids: result.tokenIds, text: result.text, steps: result.steps.map(publicStep), finish_reason: result.finishReason, usage: result.usage }));
  } else {
    process.stdout.write(`\n[finish_reason=${result.finishReason} prompt_tokens=${result.usage.prompt_tokens} completion_tokens=${result.usage.completion_tokens}]\n`);
  }
}
