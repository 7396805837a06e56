import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Engine } from '../../engine/engine.js';
import { parseRequest } from '../schemas.js';

const TokenizeRequest = z.union([
  z.object({ model: z.string().optional(), prompt: z.string(), add_special_tokens: z.boolean().optional() }),
  z.object({ model: z.string().optional(), messages: z.array(z.object({ role: z.string(), content: z.union([z.string(), z.array(z.object({ type: z.string(), text: z.string().optional() }))]) })).min(1), add_generation_prompt: z.boolean().optional() }),
]);
const DetokenizeRequest = z.object({ model: z.string().optional(), tokens: z.array(z.number().int().min(0)) });

/** vLLM's POST /tokenize: a prompt, or chat messages rendered with the chat template (images as one placeholder each). */
export function tokenizeHandler(engine: () => Engine) {
  return (req: Request, res: Response): void => {
    const body = parseRequest(TokenizeRequest, req.body);
    const e = engine();
    const text = 'prompt' in body ? body.prompt : e.tokenizer.render(body.messages, { addGenerationPrompt: body.add_generation_prompt ?? true });
    const tokens = e.tokenizer.encode(text);
    res.json({ count: tokens.length, max_model_len: e.maxModelLen, tokens });
  };
}

/** vLLM's POST /detokenize. */
export function detokenizeHandler(engine: () => Engine) {
  return (req: Request, res: Response): void => {
    const body = parseRequest(DetokenizeRequest, req.body);
    res.json({ prompt: engine().tokenizer.decode(body.tokens) });
  };
}
