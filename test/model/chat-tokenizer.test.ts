import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { ChatTokenizer } from '../../src/model/chat-tokenizer.js';
import { ALL_TOOLS } from '../../src/tools/definitions.js';
import { Rng } from '../../src/util/random.js';

const readJson = async (name: string) => JSON.parse(await readFile(new URL(`../../models/default/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;

/** Texts that put added tokens everywhere: rendered chats, tokens inside words and numbers, partial tokens, unicode. */
function texts(added: string[], chat: ChatTokenizer): string[] {
  const rng = new Rng(5);
  const fragments = ['Hello', ' world', '\n\n', '  ', 'e\u0301', 'caf\u00e9', '日本語', '12345', '<|im_', 'tool_call>', '{"bbox_2d": [0.1, 0.2]}', "it's", '\t', ' '];
  const out = [
    chat.render([{ role: 'user', content: 'What is in the image?' }], { tools: Object.values(ALL_TOOLS), addGenerationPrompt: true }),
    chat.render([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'ok<tool_call>x</tool_call>' }], { addGenerationPrompt: true }),
    added.join(''), added.join(' '), `a${added[0]}b${added[1]}${added[1]}c`,
  ];
  for (let i = 0; i < 300; i++) {
    const n = 1 + Math.floor(rng.next() * 12);
    out.push(Array.from({ length: n }, () => (rng.next() < 0.3 ? added : fragments)[Math.floor(rng.next() * (rng.next() < 0.3 ? added.length : fragments.length))] ?? '').join(''));
  }
  return out;
}

test('tokenizing piece by piece between added tokens (cached) gives the tokenizer\'s own ids for the whole text', async () => {
  const [tokenizerJson, configJson] = [await readJson('tokenizer.json'), await readJson('tokenizer_config.json')];
  const whole = new Tokenizer(tokenizerJson as never, configJson as never);
  const added = (tokenizerJson.added_tokens as { content: string }[]).map((t) => t.content);
  const variants = {
    default: tokenizerJson,
    // An added token that strips its neighbours' spaces: pieces are not independent, so no split is made.
    lstrip: { ...tokenizerJson, added_tokens: (tokenizerJson.added_tokens as object[]).map((t, i) => (i === 0 ? { ...t, lstrip: true } : t)) },
  };
  for (const [name, json] of Object.entries(variants)) {
    const reference = name === 'default' ? whole : new Tokenizer(json as never, configJson as never);
    const chat = new ChatTokenizer(json, configJson);
    for (const text of texts(added, chat)) {
      const expected = reference.encode(text, { add_special_tokens: false }).ids;
      assert.deepEqual(chat.encode(text), expected, `${name}: ${JSON.stringify(text)}`);
      assert.deepEqual(chat.encode(text), expected, `${name}, from the cache: ${JSON.stringify(text)}`);
    }
  }
});

/** The chat template object of a ChatTokenizer, to count or change its renders. */
const templateOf = (chat: ChatTokenizer) => (chat as unknown as { template: { render: (ctx: Record<string, unknown>) => string } }).template;

test('a tool-result turn rendered from the cache is the template\'s own rendering; a template that reads the clock is not cached', async () => {
  const [tokenizerJson, configJson] = [await readJson('tokenizer.json'), await readJson('tokenizer_config.json')];
  const chat = new ChatTokenizer(tokenizerJson, configJson);
  const turns = [
    [{ role: 'user', content: 'The cropped image:' }],
    [{ role: 'user', content: [{ type: 'text', text: 'The cropped image:' }, { type: 'image' }] }],
    [{ role: 'user', content: [{ type: 'text', text: 'The cropped image:' }, { type: 'image' }, { type: 'image' }] }],
  ];
  const fresh = turns.map((t) => new ChatTokenizer(tokenizerJson, configJson).renderAfterAssistant(t));
  assert.equal(new Set(fresh).size, turns.length, 'the turns render differently');
  let renders = 0;
  const template = templateOf(chat);
  const render = template.render.bind(template);
  template.render = (ctx) => (renders++, render(ctx));
  for (let round = 0; round < 2; round++) {
    turns.forEach((t, i) => assert.equal(chat.renderAfterAssistant(t), fresh[i], `turn ${i}, round ${round}`));
  }
  assert.equal(renders, turns.length, 'each turn rendered once, then taken from the cache');

  // A counter stands in for the clock: a template that calls strftime_now renders differently from one call to the next.
  let minute = 0;
  const clocked = { ...configJson, chat_template: `${configJson.chat_template as string}{{ strftime_now('%M') }}` };
  const clock = new ChatTokenizer(tokenizerJson, clocked);
  const clockTemplate = templateOf(clock);
  const clockRender = clockTemplate.render.bind(clockTemplate);
  clockTemplate.render = (ctx) => clockRender(ctx) + String(minute++);
  assert.notEqual(clock.renderAfterAssistant(turns[0]!), clock.renderAfterAssistant(turns[0]!), 'rendered again each time');
});
