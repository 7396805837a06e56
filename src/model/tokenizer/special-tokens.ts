/** Qwen2.5-VL's special tokens, in Qwen's order; they follow the BPE vocabulary. */
export const SPECIAL_TOKENS: { content: string; special: boolean }[] = [
  { content: '<|endoftext|>', special: true },
  { content: '<|im_start|>', special: true },
  { content: '<|im_end|>', special: true },
  { content: '<|object_ref_start|>', special: true },
  { content: '<|object_ref_end|>', special: true },
  { content: '<|box_start|>', special: true },
  { content: '<|box_end|>', special: true },
  { content: '<|quad_start|>', special: true },
  { content: '<|quad_end|>', special: true },
  { content: '<|vision_start|>', special: true },
  { content: '<|vision_end|>', special: true },
  { content: '<|vision_pad|>', special: true },
  { content: '<|image_pad|>', special: true },
  { content: '<|video_pad|>', special: true },
  // Qwen marks these two non-special: they are part of the visible text of a tool call.
  { content: '<tool_call>', special: false },
  { content: '</tool_call>', special: false },
];

/**
 * The pre-tokenizer split (Qwen2's pattern, with the contraction group spelled out because JS
 * regexes lack inline (?i:) groups in Node 20).
 */
export const PRETOKENIZE_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d|'S|'T|'RE|'VE|'M|'LL|'D|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's reversible byte -> printable-unicode mapping used by byte-level BPE. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const table = new Array<string>(256);
  bs.forEach((b, i) => (table[b] = String.fromCodePoint(cs[i]!)));
  return table;
}
