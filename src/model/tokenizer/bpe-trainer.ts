import { PRETOKENIZE_PATTERN, bytesToUnicode } from './special-tokens.js';

export interface BpeModel {
  /** Byte symbols first (ids 0..255 in byte order), then one token per merge. */
  vocab: string[];
  merges: [string, string][];
}

/**
 * Trains byte-level BPE merges on a corpus. Deterministic: ties in pair frequency break by the
 * pair's string order, so the same corpus always yields the same vocabulary.
 */
export function trainBpe(corpus: string[], numMerges: number): BpeModel {
  const byteChar = bytesToUnicode();
  const encoder = new TextEncoder();
  const regex = new RegExp(PRETOKENIZE_PATTERN, 'gu');
  const wordCounts = new Map<string, number>();
  for (const text of corpus) {
    for (const m of text.normalize('NFC').matchAll(regex)) {
      const word = Array.from(encoder.encode(m[0]), (b) => byteChar[b]).join('');
      wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
    }
  }
  const words = [...wordCounts.entries()].map(([w, count]) => ({ symbols: Array.from(w), count }));
  const vocab = [...byteChar];
  const known = new Set(vocab);
  const merges: [string, string][] = [];
  for (let step = 0; step < numMerges; step++) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    // Different merge paths can build the same string ("ab"+"c", "a"+"bc"): one id per string.
    if (!known.has(a + b)) {
      known.add(a + b);
      vocab.push(a + b);
    }
    for (const w of words) {
      const s = w.symbols;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(s[i]!);
      }
      w.symbols = out;
    }
  }
  return { vocab, merges };
}
