import { z } from 'zod';
import { ApiError } from './errors.js';

const TextPart = z.object({ type: z.literal('text'), text: z.string() });
const ImagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.union([z.string(), z.object({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).optional() })]),
});
/** A video given as its frames (Qwen's `{"type": "video", "video": [frame, ...]}`), each an image URL. */
const VideoFramesPart = z.object({ type: z.literal('video'), video: z.array(z.string()).min(1) });
/** A video file: a data: URL (video/*, or an animated image/gif or image/webp), or a path under an allowed directory. */
const VideoUrlPart = z.object({ type: z.literal('video_url'), video_url: z.union([z.string(), z.object({ url: z.string() })]) });
const UserContent = z.union([z.string(), z.array(z.discriminatedUnion('type', [TextPart, ImagePart, VideoFramesPart, VideoUrlPart])).min(1)]);
const TextContent = z.union([z.string(), z.array(TextPart)]);

const ToolCallSchema = z.object({
  id: z.string().optional(),
  type: z.literal('function').optional(),
  function: z.object({ name: z.string(), arguments: z.union([z.string(), z.record(z.string(), z.unknown())]) }),
});

const Message = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: TextContent, name: z.string().optional() }),
  z.object({ role: z.literal('developer'), content: TextContent, name: z.string().optional() }),
  z.object({ role: z.literal('user'), content: UserContent, name: z.string().optional() }),
  z.object({ role: z.literal('assistant'), content: TextContent.nullable().optional(), tool_calls: z.array(ToolCallSchema).optional(), name: z.string().optional() }),
]);

export const TOOL_NAMES = ['crop_image_normalized', 'select_frames'] as const;

/** A known parameter we do not implement: absent or null is fine, anything else is a 400. */
function unsupported(_param: string, message: string) {
  return z.any().refine((v) => v === undefined || v === null, { message }).optional();
}

/**
 * POST /v1/chat/completions body. Unknown top-level fields are ignored (as vLLM does); known
 * fields with invalid values are rejected with a 400 naming the param.
 */
export const ChatCompletionRequest = z.object({
  model: z.string().optional(),
  messages: z.array(Message).min(1),
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  top_k: z.number().int().min(-1).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  n: z.number().int().min(1).max(16).nullable().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  user: z.string().optional(),
  /** vLLM extension: keep generating past end-of-sequence tokens. */
  ignore_eos: z.boolean().optional(),
  // Known OpenAI parameters this server does not implement: rejected (naming the param) rather than
  // silently ignored, so a client does not believe it got function calling or JSON mode.
  tools: unsupported('tools', 'function tools are not supported; the visual operations are built in (see pixel_reasoning)'),
  tool_choice: unsupported('tool_choice', 'function tools are not supported'),
  parallel_tool_calls: unsupported('parallel_tool_calls', 'function tools are not supported'),
  functions: unsupported('functions', 'function calling is not supported'),
  function_call: unsupported('function_call', 'function calling is not supported'),
  logit_bias: unsupported('logit_bias', 'logit_bias is not supported'),
  audio: unsupported('audio', 'audio output is not supported'),
  response_format: z.object({ type: z.literal('text') }, { error: 'only response_format {"type": "text"} is supported' }).nullable().optional(),
  modalities: z.array(z.literal('text'), { error: 'only the "text" modality is supported' }).nullable().optional(),
  /** Our extension: per-request control of the tool loop. */
  pixel_reasoning: z
    .object({
      enabled: z.boolean().optional(),
      max_tool_calls: z.number().int().min(0).max(16).optional(),
      tools: z.array(z.enum(TOOL_NAMES)).optional(),
    })
    .optional(),
});

export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** Parses a body, turning the first validation issue into an OpenAI-shaped 400 that names the param. */
export function parseRequest<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const param = issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  throw new ApiError(400, `Invalid request${param ? ` at '${param}'` : ''}: ${issue.message}`, 'invalid_value', param);
}
