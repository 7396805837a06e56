import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ToolDefinition } from '../tools/definitions.js';

/** A chat message as the template sees it (OpenAI or HF content parts). */
export interface TemplateMessage {
  role: string;
  content: string | { type: string; text?: string }[] | null;
  tool_calls?: { function: { name: string; arguments: unknown } }[];
}

export interface RenderOptions {
  tools?: ToolDefinition[];
  addGenerationPrompt?: boolean;
}

const PIECE_CACHE_SIZE = 256;
const TURN_CACHE_SIZE = 64;

/** `make(key)` through a map used as an LRU cache of `size` entries (a Map iterates in insertion order). */
function remember<V>(cache: Map<string, V>, size: number, key: string, make: (key: string) => V): V {
  const cached = cache.get(key);
  if (cached !== undefined) {
    cache.delete(key);
    cache.set(key, cached);
    return cached;
  }
  const value = make(key);
  cache.set(key, value);
  if (cache.size > size) cache.delete(cache.keys().next().value!);
  return value;
}

interface AddedToken {
  id: number;
  content: string;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
}

/**
 * The tokenizer splits text at added tokens first (leftmost, longest) and tokenizes each piece on its
 * own, so pieces may be tokenized apart — unless an added token strips its neighbours' spaces, is
 * matched only after normalization, or the pre-tokenizer treats the first piece differently
 * (Metaspace's prepend_scheme "first"). Those tokenizers get no split.
 */
function piecewiseSplit(added: AddedToken[], preTokenizer: unknown): RegExp | undefined {
  if (added.length === 0 || added.some((t) => t.lstrip || t.rstrip || t.normalized)) return undefined;
  if (JSON.stringify(preTokenizer ?? null).includes('Metaspace')) return undefined;
  const escaped = added.map((t) => t.content).sort((a, b) => b.length - a.length).map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`(${escaped.join('|')})`);
}

/** Tokenizer + chat template of a model directory (HF tokenizers format, Jinja template). */
export class ChatTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly idsByContent = new Map<string, number>();
  /** Splits text at added tokens (kept), where piecewise tokenizing equals tokenizing the whole; else unset. */
  private readonly addedTokenSplit?: RegExp;
  /** Token ids of recent pieces between added tokens, least recently used first. */
  private readonly pieces = new Map<string, number[]>();
  /**
   * Recent tool-result turns as rendered (renderAfterAssistant), by their messages: a tool's result text repeats across
   * requests. Unset when the template reads the clock (strftime_now), whose output then depends on more than its input.
   */
  private readonly turns?: Map<string, string>;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfigJson: Record<string, unknown>) {
    this.tokenizer = new Tokenizer(tokenizerJson as never, tokenizerConfigJson as never);
    const template = tokenizerConfigJson.chat_template;
    if (typeof template !== 'string') throw new Error('tokenizer_config.json has no chat_template');
    this.template = new Template(template);
    const added = (tokenizerJson.added_tokens as AddedToken[] | undefined) ?? [];
    for (const t of added) this.idsByContent.set(t.content, t.id);
    this.addedTokenSplit = piecewiseSplit(added, tokenizerJson.pre_tokenizer);
    if (!template.includes('strftime_now')) this.turns = new Map();
  }

  encode(text: string): number[] {
    if (!this.addedTokenSplit) return this.encodeWhole(text);
    // The text between added tokens is tokenized piece by piece (as the tokenizer itself does): the tool
    // system prompt that every request repeats is then tokenized once, not once per request.
    return text.split(this.addedTokenSplit).flatMap((piece) => (piece.length === 0 ? [] : this.encodePiece(piece)));
  }

  private encodeWhole(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  private encodePiece(piece: string): number[] {
    return remember(this.pieces, PIECE_CACHE_SIZE, piece, (p) => this.encodeWhole(p));
  }

  decode(ids: number[], skipSpecialTokens = false): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids, { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  /** Id of an added (special) token, e.g. `<|im_end|>`. */
  tokenId(content: string): number {
    const id = this.idsByContent.get(content);
    if (id === undefined) throw new Error(`tokenizer has no token ${content}`);
    return id;
  }

  /**
   * The text a template renders after an assistant message for `turns` (then the generation
   * prompt): rendered after a placeholder assistant turn and cut after the placeholder, so it holds
   * what the template puts between turns and nothing it puts at the start (a default system turn).
   */
  renderAfterAssistant(turns: TemplateMessage[]): string {
    if (!this.turns) return this.renderTurns(turns);
    return remember(this.turns, TURN_CACHE_SIZE, JSON.stringify(turns), () => this.renderTurns(turns));
  }

  private renderTurns(turns: TemplateMessage[]): string {
    const mark = '\u0000pixelreasoner-turn-boundary\u0000';
    const text = this.render([{ role: 'user', content: 'x' }, { role: 'assistant', content: mark }, ...turns], { addGenerationPrompt: true });
    const at = text.lastIndexOf(mark);
    if (at < 0) throw new Error('the chat template does not render assistant messages');
    return text.slice(at + mark.length);
  }

  render(messages: TemplateMessage[], opts: RenderOptions = {}): string {
    return this.template.render({
      messages,
      tools: opts.tools && opts.tools.length > 0 ? opts.tools : undefined,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
    });
  }
}
