import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Engine } from '../../engine/engine.js';
import type { GenerationEvent, GenerationResult, TokenLogprob } from '../../engine/types.js';
import { ApiError } from '../errors.js';
import { ChatCompletionRequest, parseRequest } from '../schemas.js';
import type { ServerConfig } from '../config.js';
import { mapEngineError, publicStep, splitTurns, toEngineMessages, toGenerationRequest } from '../request-conversion.js';

export interface ChatDeps {
  engine: () => Engine;
  modelName: () => string;
  config: ServerConfig;
}

function openaiLogprobs(lps: TokenLogprob[] | undefined) {
  if (!lps) return null;
  const bytes = (t: string) => [...Buffer.from(t, 'utf8')];
  return {
    content: lps.map((l) => ({ token: l.token, logprob: l.logprob, bytes: bytes(l.token), top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })) })),
  };
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
    /** All n choices share one prompt prefill (the engine copies the prompt's KV cache). */
    const runAll = (onEvent?: (i: number, e: GenerationEvent) => void) =>
      engine.generateMany(request, n, (i) => ({ signal: abort.signal, onEvent: onEvent && ((e) => onEvent(i, e)) })).catch(mapEngineError);

    if (!body.stream) {
      const results = await runAll();
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
        usage: usageOf(results),
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
      if (body.stream_options?.include_usage) write(chunk([], { usage: usageOf(results) }));
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

/** OpenAI usage of n choices that shared one prompt (counted once). */
function usageOf(results: GenerationResult[]) {
  const completion = results.reduce((a, r) => a + r.usage.completion_tokens, 0);
  const { prompt_tokens: prompt, prompt_tokens_details: details } = results[0]!.usage;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: details?.cached_tokens ?? 0 } };
}
