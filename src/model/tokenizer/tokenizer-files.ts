import { trainBpe } from './bpe-trainer.js';
import { tokenizerCorpus } from './corpus.js';
import { CHAT_TEMPLATE } from './chat-template.js';
import { PRETOKENIZE_PATTERN, SPECIAL_TOKENS } from './special-tokens.js';

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfigJson: Record<string, unknown>;
  vocabSize: number;
  /** Id of each special token by content. */
  specialIds: Record<string, number>;
}

const BYTE_LEVEL = { add_prefix_space: false, trim_offsets: false, use_regex: false };

/** Builds tokenizer.json (HF tokenizers format, byte-level BPE) and tokenizer_config.json. */
export function buildTokenizerFiles(numMerges = 700): TokenizerFiles {
  const bpe = trainBpe(tokenizerCorpus(), numMerges);
  const vocab: Record<string, number> = {};
  bpe.vocab.forEach((tok, id) => (vocab[tok] = id));
  const specialIds: Record<string, number> = {};
  const added = SPECIAL_TOKENS.map((t, i) => {
    const id = bpe.vocab.length + i;
    specialIds[t.content] = id;
    return { id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t.special };
  });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: PRETOKENIZE_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', ...BYTE_LEVEL },
      ],
    },
    post_processor: { type: 'ByteLevel', ...BYTE_LEVEL },
    decoder: { type: 'ByteLevel', ...BYTE_LEVEL },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: bpe.merges,
    },
  };
  const addedTokensDecoder = Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest]));
  const tokenizerConfigJson = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    additional_special_tokens: SPECIAL_TOKENS.filter((t) => t.special && !['<|endoftext|>', '<|im_end|>'].includes(t.content)).map((t) => t.content),
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    errors: 'replace',
    clean_up_tokenization_spaces: false,
    split_special_tokens: false,
    model_max_length: 4096,
    tokenizer_class: 'Qwen2Tokenizer',
    chat_template: CHAT_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfigJson, vocabSize: bpe.vocab.length + SPECIAL_TOKENS.length, specialIds };
}
