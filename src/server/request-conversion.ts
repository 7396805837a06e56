import { PromptTooLongError, QueueFullError, TooManySamplesError } from '../engine/engine.js';
import type { ChatMessage, ContentPart, GenerationRequest, GenerationResult, ToolStep } from '../engine/types.js';
import { defaultTools } from '../tools/definitions.js';
import type { ServerConfig } from './config.js';
import { ApiError } from './errors.js';
import { loadImageUrl, loadVideoUrl } from './media.js';
import type { ChatCompletionRequest } from './schemas.js';

/** Request conversion shared by the HTTP and gRPC front ends. */
const textOf = (c: string | { text: string }[] | null | undefined) => (typeof c === 'string' ? c : (c ?? []).map((p) => p.text).join(''));

/** OpenAI messages -> engine messages, decoding every image (limits enforced here). */
export async function toEngineMessages(body: ChatCompletionRequest, config: ServerConfig): Promise<ChatMessage[]> {
  const imageCount = body.messages.reduce((n, m) => n + (m.role === 'user' && Array.isArray(m.content) ? m.content.filter((p) => p.type === 'image_url').length : 0), 0);
  if (imageCount > config.maxImagesPerRequest) {
    throw new ApiError(400, `Too many images: ${imageCount} in the request, at most ${config.maxImagesPerRequest} allowed.`, 'too_many_images', 'messages');
  }
  const messages = await Promise.all(
    body.messages.map(async (m, i): Promise<ChatMessage> => {
      if (m.role === 'user') {
        if (typeof m.content === 'string') return { role: 'user', content: m.content };
        const parts = await Promise.all(
          m.content.map(async (p, j): Promise<ContentPart> => {
            if (p.type === 'text') return { type: 'text', text: p.text };
            if (p.type === 'video') {
              const param = `messages.${i}.content.${j}.video`;
              if (p.video.length > config.maxFramesPerVideo) {
                throw new ApiError(400, `Too many frames: ${p.video.length} in one video, at most ${config.maxFramesPerVideo} allowed.`, 'too_many_frames', param);
              }
              return { type: 'video', frames: await Promise.all(p.video.map((u, k) => loadImageUrl(u, `${param}.${k}`, config))) };
            }
            if (p.type === 'video_url') {
              const url = typeof p.video_url === 'string' ? p.video_url : p.video_url.url;
              const video = await loadVideoUrl(url, `messages.${i}.content.${j}.video_url`, config);
              return { type: 'video', frames: video.frames, fps: video.fps };
            }
            const url = typeof p.image_url === 'string' ? p.image_url : p.image_url.url;
            return { type: 'image', image: await loadImageUrl(url, `messages.${i}.content.${j}.image_url`, config) };
          }),
        );
        return { role: 'user', content: parts };
      }
      if (m.role === 'assistant') {
        const calls = (m.tool_calls ?? []).map((c) => {
          const args = typeof c.function.arguments === 'string' ? c.function.arguments : JSON.stringify(c.function.arguments);
          return `<tool_call>\n{"name": ${JSON.stringify(c.function.name)}, "arguments": ${args}}\n</tool_call>`;
        });
        return { role: 'assistant', content: [textOf(m.content), ...calls].filter(Boolean).join('\n') };
      }
      return { role: 'system', content: textOf(m.content) };
    }),
  );
  const pixels = messages.reduce((n, m) => n + (typeof m.content === 'string' ? 0 : m.content.reduce((k, p) =>
    k + (p.type === 'image' ? p.image.width * p.image.height : p.type === 'video' ? p.frames.reduce((f, fr) => f + fr.width * fr.height, 0) : 0), 0)), 0);
  if (pixels > config.maxTotalPixels) {
    throw new ApiError(413, `The request's images and frames hold ${pixels} pixels, over the limit of ${config.maxTotalPixels}.`, 'too_many_pixels', 'messages');
  }
  return messages;
}

export function toGenerationRequest(body: ChatCompletionRequest, messages: ChatMessage[], config: ServerConfig): GenerationRequest {
  const pr = body.pixel_reasoning;
  const enabled = pr?.enabled ?? true;
  const hasVideo = messages.some((m) => Array.isArray(m.content) && m.content.some((p) => p.type === 'video'));
  const seed = body.seed ?? undefined;
  return {
    messages,
    sampling: {
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      topK: body.top_k ?? 0,
      presencePenalty: body.presence_penalty ?? 0,
      frequencyPenalty: body.frequency_penalty ?? 0,
      seed,
    },
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? config.defaultMaxTokens,
    tools: enabled ? (pr?.tools ?? defaultTools(hasVideo)) : [],
    maxToolCalls: pr?.max_tool_calls ?? config.maxToolCalls,
    stop: body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop,
    logprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined,
    ignoreEos: body.ignore_eos ?? false,
  };
}

/** Steps as the API shows them (thumbnails stripped). */
export function publicStep(s: ToolStep) {
  const { result_images: _images, ...rest } = s;
  return rest;
}

/** The final turn is the answer; earlier turns (with their tool calls) are the reasoning. */
export function splitTurns(r: GenerationResult): { content: string; reasoning: string | null } {
  if (r.turns.length <= 1) return { content: r.text, reasoning: null };
  return { content: r.turns.at(-1)!, reasoning: r.turns.slice(0, -1).join('') };
}


/** Engine errors as API errors (the HTTP and gRPC front ends map these to their status codes). */
export function mapEngineError(e: unknown): never {
  if (e instanceof PromptTooLongError) throw new ApiError(400, e.message, 'context_length_exceeded', 'messages');
  if (e instanceof TooManySamplesError) throw new ApiError(400, e.message, 'invalid_value', 'n');
  if (e instanceof QueueFullError) throw new ApiError(429, e.message, 'server_overloaded', null, 'rate_limit_error');
  throw e;
}
