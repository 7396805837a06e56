import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Engine } from '../../engine/engine.js';
import { PromptTooLongError, QueueFullError } from '../../engine/engine.js';
import type { ChatMessage, ContentPart, GenerationEvent, GenerationRequest, GenerationResult, ToolStep, TokenLogprob } from '../../engine/types.js';
import type { ToolName } from '../../tools/definitions.js';
import { ApiError } from '../errors.js';
import { loadImageUrl } from '../media.js';
import { ChatCompletionRequest, parseRequest } from '../schemas.js';
import type { ServerConfig } from '../config.js';

export interface ChatDeps {
  engine: () => Engine;
  modelName: () => string;
  config: ServerConfig;
}

const textOf = (c: string | { text: string }[] | null | undefined) => (typeof c === 'string' ? c : (c ?? []).map((p) => p.text).join(''));

/** OpenAI messages -> engine messages, decoding every image (limits enforced here). */
async function toEngineMessages(body: ChatCompletionRequest, config: ServerConfig): Promise<ChatMessage[]> {
  const imageCount = body.messages.reduce((n, m) => n + (m.role === 'user' && Array.isArray(m.content) ? m.content.filter((p) => p.type === 'image_url').length : 0), 0);
  if (imageCount > config.maxImagesPerRequest) {
    throw new ApiError(400, `Too many images: ${imageCount} in the request, at most ${config.maxImagesPerRequest} allowed.`, 'too_many_images', 'messages');
  }
  return Promise.all(
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
}

function toGenerationRequest(body: ChatCompletionRequest, messages: ChatMessage[], config: ServerConfig): GenerationRequest {
  const pr = body.pixel_reasoning;
  const enabled = pr?.enabled ?? true;
  const hasVideo = messages.some((m) => Array.isArray(m.content) && m.content.some((p) => p.type === 'video'));
  const defaultTools: ToolName[] = hasVideo ? ['select_frames', 'crop_image_normalized'] : ['crop_image_normalized'];
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
    tools: enabled ? (pr?.tools ?? defaultTools) : [],
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

function openaiLogprobs(lps: TokenLogprob[] | undefined) {
  if (!lps) return null;
  const bytes = (t: string) => [...Buffer.from(t, 'utf8')];
  return {
    content: lps.map((l) => ({ token: l.token, logprob: l.logprob, bytes: bytes(l.token), top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })) })),
  };
}

/** The final turn is the answer; earlier turns (with their tool calls) are the reasoning. */
function splitTurns(r: GenerationResult): { content: string; reasoning: string | null } {
  if (r.turns.length <= 1) return { content: r.text, reasoning: null };
  return { content: r.turns.at(-1)!, reasoning: r.turns.slice(0, -1).join('') };
}

export function chatCompletionsHandler(deps: ChatDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const body = parseRequest(ChatCompletionRequest, req.body);
    const served = deps.modelName();
    const messages = await toEngineMessages(body, deps.config);
    const n = body.n ?? 1;
    const engine = deps.engine();
    const abort = new AbortController();
    const timeout = deps.config.requestTimeoutMs > 0 ? setTimeout(() => abort.abort(), deps.config.requestTimeoutMs).unref() : undefined;
    res.on('close', () => {
      clearTimeout(timeout);
      if (!res.writableFinished) abort.abort();
    });
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const request = toGenerationRequest(body, messages, deps.config);
    const mapError = (e: unknown): never => {
      if (e instanceof PromptTooLongError) throw new ApiError(400, e.message, 'context_length_exceeded', 'messages');
      if (e instanceof QueueFullError) throw new ApiError(429, e.message, 'server_overloaded', null, 'rate_limit_error');
      throw e;
    };
    /** All n choices share one prompt prefill (the engine copies the prompt's KV cache). */
    const runAll = (onEvent?: (i: number, e: GenerationEvent) => void) =>
      engine.generateMany(request, n, (i) => ({ signal: abort.signal, onEvent: onEvent && ((e) => onEvent(i, e)) })).catch(mapError);

    if (!body.stream) {
      const results = await runAll();
      const completion = results.reduce((a, r) => a + r.usage.completion_tokens, 0);
      const prompt = results[0]!.usage.prompt_tokens;
      res.json({
        id, object: 'chat.completion', created, model: served,
        choices: results.map((r, i) => {
          const { content, reasoning } = splitTurns(r);
          return {
            index: i,
            message: { role: 'assistant', content, reasoning_content: reasoning, tool_calls: [] },
            logprobs: openaiLogprobs(r.logprobs),
            finish_reason: r.finishReason,
            pixel_reasoning: { steps: r.steps.map(publicStep), turns: r.turns.length },
          };
        }),
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      });
      return;
    }

    // Prompt errors must surface as a 400 before the stream starts: validate by building prompts lazily
    // through the first event; until a byte is written, errors still map to a JSON error response.
    let started = false;
    const write = (chunk: unknown) => {
      if (!started) {
        res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
        res.flushHeaders();
        started = true;
      }
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    };
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ id, object: 'chat.completion.chunk', created, model: served, choices, ...extra });
    try {
      const firstChunk = new Array<boolean>(n).fill(true);
      const roleChunk = (i: number) => {
        if (firstChunk[i]) {
          firstChunk[i] = false;
          write(chunk([{ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
        }
      };
      const results = await runAll((i, e) => {
        roleChunk(i);
        if (e.type === 'text') write(chunk([{ index: i, delta: { content: e.delta }, logprobs: openaiLogprobs(e.logprobs), finish_reason: null }]));
        else if (e.type === 'tool') write(chunk([{ index: i, delta: {}, logprobs: null, finish_reason: null, pixel_reasoning: { step: publicStep(e.step) } }]));
      });
      results.forEach((r, i) => {
        roleChunk(i);
        write(chunk([{ index: i, delta: {}, logprobs: null, finish_reason: r.finishReason }]));
      });
      if (body.stream_options?.include_usage) {
        const completion = results.reduce((a, r) => a + r.usage.completion_tokens, 0);
        const prompt = results[0]!.usage.prompt_tokens;
        write(chunk([], { usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } }));
      }
      res.write('data: [DONE]\n\n');
      res.end();
    } catch (e) {
      if (!started) throw e;
      const err = e instanceof ApiError ? e : new ApiError(500, (e as Error).message, 'internal_error');
      res.write(`data: ${JSON.stringify(err.toJSON())}\n\n`);
      res.end();
    }
  };
}
