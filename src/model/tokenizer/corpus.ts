import { Template } from '@huggingface/jinja';
import { Rng } from '../../util/random.js';
import { ALL_TOOLS, PIXEL_REASONING_GUIDELINE } from '../../tools/definitions.js';
import { CHAT_TEMPLATE } from './chat-template.js';

const COLORS = ['red', 'green', 'blue', 'yellow', 'orange', 'purple', 'black', 'white', 'gray', 'pink', 'brown', 'cyan'];
const SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond', 'cross', 'ring', 'object', 'shape', 'mug', 'logo'];
const WORDS =
  'the a an of to in on at is are was it this that what which how many where there here image picture region area frame video question answer option choice count number text small large left right top bottom upper lower middle center corner I need look closer zoom into see can cannot clearly find located appears seems so therefore let me check first second third next last shows nothing useful wrong correct try again instead label value field title name total score date price color shape size and or with without from by for not only then because'.split(' ');

/**
 * Text the tokenizer's merges are trained on: the prompts, tool calls, tool results and reasoning
 * phrases the model reads and writes, so those compress to few tokens in a small vocabulary.
 */
export function tokenizerCorpus(seed = 0): string[] {
  const rng = new Rng(seed);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  const template = new Template(CHAT_TEMPLATE);
  const out: string[] = [];
  for (let i = 0; i < 20; i++) {
    out.push(
      template.render({
        messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: `What is the ${pick(COLORS)} ${pick(SHAPES)}?${PIXEL_REASONING_GUIDELINE}` }] }],
        tools: Object.values(ALL_TOOLS),
        add_generation_prompt: true,
      }),
    );
  }
  const num = () => (rng.next() < 0.5 ? rng.next().toFixed(2) : String(rng.int(2000)));
  for (let i = 0; i < 400; i++) {
    out.push(`<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [${num()}, ${num()}, ${num()}, ${num()}], "target_image": ${1 + rng.int(4)}}}\n</tool_call>`);
    out.push(`<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [${Array.from({ length: 1 + rng.int(4) }, () => 1 + rng.int(16)).join(', ')}]}}\n</tool_call>`);
    out.push(`\nHere is the cropped image (Image Size: ${28 + rng.int(900)}x${28 + rng.int(900)}):`);
    out.push(`\nHere are the selected frames (Frame Size: ${28 + rng.int(500)}x${28 + rng.int(500)}, Numbered 1 to ${1 + rng.int(8)}):`);
    out.push(`\nExecution error:\nCropped image is too small: ${rng.int(28)}x${rng.int(28)}\n`);
    const sentence = Array.from({ length: 6 + rng.int(10) }, () => pick(WORDS)).join(' ');
    out.push(`The ${pick(COLORS)} ${pick(SHAPES)} is in the ${pick(WORDS)} ${pick(WORDS)}. ${sentence}. The answer is \\boxed{${pick(['A', 'B', 'C', 'D', String(rng.int(20)), pick(COLORS)])}}.`);
    out.push(`A: ${pick(COLORS)}\nB: ${pick(COLORS)}\nC: ${pick(COLORS)}\nD: ${pick(COLORS)}\nHow many ${pick(COLORS)} ${pick(SHAPES)}s are there?`);
  }
  return out;
}
