import { readFile } from 'node:fs/promises';
import { openEngine } from '../engine/open-engine.js';
import { GREEDY } from '../engine/sampler.js';
import type { ChatMessage, ContentPart } from '../engine/types.js';
import { resolveDefaultModel } from '../model/default-model.js';
import type { ModelCacheOptions } from '../model/hf/model-cache.js';
import { decodeImage } from '../tools/image.js';
import { publicStep } from '../server/request-conversion.js';
import { defaultTools } from '../tools/definitions.js';

export interface GenerateArgs {
  model?: string;
  /** Images, in order, before the prompt text. */
  images: string[];
  /** A video given as its frames (image files), after the images. */
  videoFrames?: string[];
  /** Model cache and weight precision when `model` is a Hugging Face snapshot. */
  cache?: ModelCacheOptions;
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
  const engine = await openEngine(a.model ?? (await resolveDefaultModel((m) => console.error(m))), { cache: a.cache });
  const content: ContentPart[] = [];
  const decode = async (path: string) => decodeImage(await readFile(path), { maxPixels: 100_000_000 });
  for (const path of a.images) content.push({ type: 'image', image: await decode(path) });
  if (a.videoFrames?.length) content.push({ type: 'video', frames: await Promise.all(a.videoFrames.map(decode)) });
  content.push({ type: 'text', text: a.prompt });
  const messages: ChatMessage[] = [{ role: 'user', content }];
  if (a.assistant !== undefined) messages.push({ role: 'assistant', content: a.assistant });
  const result = await engine.generate(
    {
      messages,
      sampling: a.temperature !== undefined ? { ...GREEDY, temperature: a.temperature, seed: a.seed } : GREEDY,
      maxTokens: a.maxTokens,
      tools: a.noTools ? [] : defaultTools(!!a.videoFrames?.length),
      logprobs: a.json ? 0 : undefined,
      maxToolCalls: 4,
      stop: [],
    },
    { onEvent: a.json ? undefined : (e) => (e.type === 'text' ? process.stdout.write(e.delta) : e.type === 'tool' ? process.stdout.write(`\n[tool] ${JSON.stringify(publicStep(e.step))}\n`) : undefined) },
  );
  await engine.release();
  if (a.json) {
    console.log(JSON.stringify({
      prompt_token_ids: result.promptTokenIds, token_ids: result.tokenIds, logprobs: result.logprobs?.map((l) => l.logprob), text: result.text,
      steps: result.steps.map(publicStep), finish_reason: result.finishReason, usage: result.usage,
    }));
  } else {
    process.stdout.write(`\n[finish_reason=${result.finishReason} prompt_tokens=${result.usage.prompt_tokens} completion_tokens=${result.usage.completion_tokens}]\n`);
  }
}
