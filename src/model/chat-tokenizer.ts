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

/** Tokenizer + chat template of a model directory (HF tokenizers format, Jinja template). */
export class ChatTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly idsByContent = new Map<string, number>();

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfigJson: Record<string, unknown>) {
    this.tokenizer = new Tokenizer(tokenizerJson as never, tokenizerConfigJson as never);
    const template = tokenizerConfigJson.chat_template;
    if (typeof template !== 'string') throw new Error('tokenizer_config.json has no chat_template');
    this.template = new Template(template);
    for (const t of (tokenizerJson.added_tokens as { id: number; content: string }[] | undefined) ?? []) this.idsByContent.set(t.content, t.id);
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
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
