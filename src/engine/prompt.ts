import type { ChatTokenizer, TemplateMessage } from '../model/chat-tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import { ALL_TOOLS, PIXEL_REASONING_GUIDELINE, REFERENCE_GUIDELINE, referenceSystemPrompt, type ToolName } from '../tools/definitions.js';
import { preprocessFrames, preprocessImage, type VisualInput } from '../model/processor/image-processor.js';
import type { RgbImage } from '../tools/image.js';
import { RopePositions } from '../model/processor/rope-index.js';
import type { ChatMessage, ContentPart } from './types.js';

/**
 * Per-frame pixel budget of a video: one image's budget spread over the frames (two frames share a
 * temporal patch), so a 16-frame video costs about as many tokens as one image. Frames picked
 * with select_frames come back at the full image budget: that is what makes them a closer look.
 */
export function videoFrameBudget(frames: number, config: ModelConfig): { min: number; max: number } {
  const p = config.processor;
  const unit = (p.patch_size * p.merge_size) ** 2;
  const max = Math.max(unit, Math.floor((p.max_pixels * p.temporal_patch_size) / Math.max(frames, p.temporal_patch_size)));
  return { min: Math.min(p.min_pixels, max), max };
}

/**
 * Frames per second a frame list stands for when nothing says otherwise: Qwen2.5-VL's processor
 * default, which the Pixel-Reasoner reference relies on (its videos are frame lists without fps).
 */
export const DEFAULT_VIDEO_FPS = 2;

/**
 * Temporal M-RoPE step per temporal patch of a video, for models that define tokens_per_second
 * (Qwen2.5-VL): tokens_per_second x second_per_grid_ts, with second_per_grid_ts =
 * temporal_patch_size / fps. Undefined for the project's own models (one position per patch).
 */
export function videoTimeInterval(config: ModelConfig, fps = DEFAULT_VIDEO_FPS): number | undefined {
  const tps = config.vision.tokens_per_second;
  // In float32, as transformers holds second_per_grid_ts (a float32 tensor) and multiplies it.
  return tps === undefined ? undefined : Math.fround(tps * Math.fround(config.processor.temporal_patch_size / fps));
}

/** Tokens to feed the decoder, with the visual features' placement and M-RoPE positions. */
export interface PromptChunk {
  ids: number[];
  positions: [number[], number[], number[]];
  /** Visual inputs in order, each at `start` (index into ids) for numTokens tokens. */
  visuals: { start: number; input: VisualInput }[];
}

/**
 * Appends a chunk to a token stream being assembled (a training trace, a rollout's trajectory),
 * shifting its visual starts, and marks each of its tokens with `mark` in `marks`.
 */
export function appendChunk(stream: PromptChunk, marks: number[], chunk: PromptChunk, mark: number): void {
  for (const v of chunk.visuals) stream.visuals.push({ start: stream.ids.length + v.start, input: v.input });
  stream.ids.push(...chunk.ids);
  chunk.positions.forEach((p, a) => stream.positions[a]!.push(...p));
  for (let i = 0; i < chunk.ids.length; i++) marks.push(mark);
}

/**
 * Expands each <|image_pad|>/<|video_pad|> placeholder to its token count and assigns M-RoPE
 * positions, continuing `rope` (so tool-result turns extend a running sequence seamlessly).
 */
export async function tokenizeWithVisuals(
  text: string, media: Media[],
  tokenizer: ChatTokenizer, config: ModelConfig, rope: RopePositions,
): Promise<PromptChunk> {
  const raw = tokenizer.encode(text);
  const inputs = await Promise.all(media.map((m) => (m.kind === 'image' ? preprocessImage(m.image, config.processor) : preprocessFrames(m.frames, config.processor, videoFrameBudget(m.frames.length, config)))));
  const chunk: PromptChunk = { ids: [], positions: [[], [], []], visuals: [] };
  const merge = config.vision.spatial_merge_size;
  let next = 0;
  for (const id of raw) {
    if (id === config.image_token_id || id === config.video_token_id) {
      const input = inputs[next];
      const medium = media[next++];
      if (!input || !medium || (medium.kind === 'image') !== (id === config.image_token_id)) throw new Error('visual placeholders and inputs do not match');
      chunk.visuals.push({ start: chunk.ids.length, input });
      for (let i = 0; i < input.numTokens; i++) chunk.ids.push(id);
      rope.visual(input.grid[0], input.grid[1] / merge, input.grid[2] / merge, chunk.positions, medium.kind === 'video' ? videoTimeInterval(config, medium.fps) : undefined);
    } else {
      chunk.ids.push(id);
      rope.text(1, chunk.positions);
    }
  }
  if (next !== inputs.length) throw new Error('visual placeholders and inputs do not match');
  return chunk;
}

function templateContent(content: string | ContentPart[]): TemplateMessage['content'] {
  if (typeof content === 'string') return content;
  return content.map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: p.type }));
}

type Media = { kind: 'image'; image: RgbImage } | { kind: 'video'; frames: RgbImage[]; fps?: number };

function mediaOf(messages: ChatMessage[]): Media[] {
  const media: Media[] = [];
  for (const m of messages) {
    if (typeof m.content === 'string') continue;
    for (const p of m.content) {
      if (p.type === 'image') media.push({ kind: 'image', image: p.image });
      else if (p.type === 'video') media.push({ kind: 'video', frames: p.frames, fps: p.fps });
    }
  }
  return media;
}

export class PromptTooLongError extends Error {
  constructor(readonly promptTokens: number, readonly maxModelLen: number) {
    super(`This model's maximum context length is ${maxModelLen} tokens. However, your request has ${promptTokens} input tokens. Please reduce the length of the input messages.`);
  }
}

export interface BuiltPrompt {
  chunk: PromptChunk;
  /** Text of a final assistant message being continued ('' if none). */
  continuedText: string;
  images: RgbImage[];
  videoFrames?: RgbImage[];
}

/**
 * Renders the conversation with the chat template. With tools, the model is prompted as it was
 * trained: the project's own models through the template's `tools` and the project's guideline as
 * the last user turn's last part; models whose config names the Pixel-Reasoner reference prompt
 * (imported checkpoints) with the reference's system turn, images first and the question plus its
 * guideline after them, through the checkpoint's own template. A final assistant message is
 * continued (vLLM's continue_final_message): its text follows the generation prompt, unterminated.
 */
export async function buildPrompt(
  messages: ChatMessage[], tools: ToolName[], tokenizer: ChatTokenizer, config: ModelConfig, rope: RopePositions,
): Promise<BuiltPrompt> {
  const last = messages.at(-1);
  const continuing = last?.role === 'assistant';
  const head = continuing ? messages.slice(0, -1) : messages;
  const reference = tools.length > 0 && config.pixel_reasoning_prompt === 'reference';
  const lastUser = head.map((m) => m.role).lastIndexOf('user');
  let rendered: TemplateMessage[] = head.map((m, i) => {
    let content = templateContent(m.content);
    if (tools.length > 0 && i === lastUser) content = reference ? referenceUserContent(content) : withGuideline(content);
    return { role: m.role, content };
  });
  if (reference) {
    const first = rendered[0];
    const systemText = first?.role !== 'system' ? undefined
      : typeof first.content === 'string' ? first.content : (first.content ?? []).map((p) => p.text ?? '').join('');
    const system = systemText ?? 'You are a helpful assistant.';
    rendered = [{ role: 'system', content: referenceSystemPrompt(system) }, ...rendered.filter((m, i) => !(i === 0 && m.role === 'system'))];
  }
  let continuedText = '';
  if (continuing && last) {
    continuedText = typeof last.content === 'string' ? last.content : last.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
  }
  const templateTools = reference ? [] : tools.map((t) => ALL_TOOLS[t]);
  const text = tokenizer.render(rendered, { tools: templateTools, addGenerationPrompt: true }) + continuedText;
  // Media in the order the rendered text places them (the reference moves images ahead of the question).
  const media = mediaOf(reference ? head.map((m, i) => (i === lastUser ? { ...m, content: mediaFirst(m.content) } : m)) : head);
  const chunk = await tokenizeWithVisuals(text, media, tokenizer, config, rope);
  const images = media.flatMap((m) => (m.kind === 'image' ? [m.image] : []));
  const video = media.find((m) => m.kind === 'video');
  return { chunk, continuedText, images, videoFrames: video?.kind === 'video' ? video.frames : undefined };
}

function withGuideline(content: TemplateMessage['content']): TemplateMessage['content'] {
  return typeof content === 'string' ? content + PIXEL_REASONING_GUIDELINE : [...(content ?? []), { type: 'text', text: PIXEL_REASONING_GUIDELINE }];
}

/** The reference's user turn: every image (or the video) first, then one text part, the question and its guideline. */
function referenceUserContent(content: TemplateMessage['content']): TemplateMessage['content'] {
  if (typeof content === 'string' || !content) return [{ type: 'text', text: (content ?? '') + REFERENCE_GUIDELINE }];
  const text = content.filter((p) => p.type === 'text').map((p) => p.text ?? '').join('');
  return [...content.filter((p) => p.type !== 'text'), { type: 'text', text: text + REFERENCE_GUIDELINE }];
}

function mediaFirst(content: string | ContentPart[]): string | ContentPart[] {
  return typeof content === 'string' ? content : [...content.filter((p) => p.type !== 'text'), ...content.filter((p) => p.type === 'text')];
}

/**
 * The turns appended after a tool call: close the assistant turn, the result as a user turn (its
 * text, then its images), reopen the assistant, exactly as the model's chat template renders them
 * after an assistant message; nothing before it (no second system turn).
 */
export async function buildToolResultChunk(
  resultText: string, newImages: RgbImage[], tokenizer: ChatTokenizer, config: ModelConfig, rope: RopePositions,
): Promise<PromptChunk> {
  const content = newImages.length === 0 ? resultText : [{ type: 'text', text: resultText }, ...newImages.map(() => ({ type: 'image' }))];
  const text = tokenizer.renderAfterAssistant([{ role: 'user', content }]);
  return tokenizeWithVisuals(text, newImages.map((image) => ({ kind: 'image' as const, image })), tokenizer, config, rope);
}
