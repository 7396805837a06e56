/**
 * Answer scoring for evaluation (DESIGN.md §5): exact match of the `\boxed{}` answer, multiple
 * choice by letter or option text, counting by exact integer, and ANLS for text answers.
 */

/** Content of the last `\boxed{...}` in a text (braces may nest), or undefined. */
export function extractBoxed(text: string): string | undefined {
  const start = text.lastIndexOf('\\boxed{');
  if (start < 0) return undefined;
  let depth = 0;
  for (let i = start + '\\boxed'.length; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(start + '\\boxed{'.length, i).trim();
  }
  return undefined;
}

/** The choice letter of an answer like `B`, `(B)`, `B: red` or `B. red`; undefined if none. */
export function choiceLetter(answer: string): string | undefined {
  const m = /^\(?([A-Za-z])\)?(?:$|[\s.:)])/.exec(answer.trim());
  return m ? m[1]!.toUpperCase() : undefined;
}

/** An integer answer (`3`, `3 cars`, `three` is not accepted), or undefined. */
export function integerAnswer(answer: string): number | undefined {
  const m = /^-?\d+/.exec(answer.trim().replace(/,/g, ''));
  return m ? Number(m[0]) : undefined;
}

export type AnswerKind = 'choice' | 'integer' | 'text';

/** Option letters of a multiple-choice question, in the order its choices are listed. */
export const CHOICE_LETTERS = 'ABCDEFGH';

const normalize = (s: string) => s.trim().toLowerCase().replace(/\s+/g, ' ');

/**
 * The letter a multiple-choice answer picks: an option's text (`red`, as VLMEvalKit also accepts)
 * names that option, otherwise a letter (`B`, `(B)`, `B: red`).
 */
export function chosenLetter(answer: string, choices: string[] = []): string | undefined {
  const index = choices.findIndex((c) => normalize(c) === normalize(answer));
  return index >= 0 ? CHOICE_LETTERS[index] : choiceLetter(answer);
}

/** Accuracy of one prediction (the model's full output) against the gold answer: 1 or 0. */
export function accuracy(prediction: string, gold: string, kind: AnswerKind, choices?: string[]): number {
  const boxed = extractBoxed(prediction);
  if (boxed === undefined) return 0;
  if (kind === 'choice') {
    const letter = chosenLetter(boxed, choices);
    return letter !== undefined && letter === choiceLetter(gold) ? 1 : 0;
  }
  if (kind === 'integer') {
    const n = integerAnswer(boxed);
    return n !== undefined && n === integerAnswer(gold) ? 1 : 0;
  }
  return normalize(boxed) === normalize(gold) ? 1 : 0;
}

export function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/**
 * ANLS of one answer: max over accepted answers of (1 - NL) if NL < 0.5 else 0, where NL is the
 * Levenshtein distance over the longer length of the lower-cased, trimmed strings.
 */
export function anls(answer: string, accepted: string[]): number {
  const a = answer.trim().toLowerCase();
  let best = 0;
  for (const gold of accepted) {
    const g = gold.trim().toLowerCase();
    const len = Math.max(a.length, g.length);
    const nl = len === 0 ? 0 : levenshtein(a, g) / len;
    best = Math.max(best, nl < 0.5 ? 1 - nl : 0);
  }
  return best;
}

/** ANLS of a model output: scored on its `\boxed{}` answer (0 when there is none). */
export function anlsOfPrediction(prediction: string, accepted: string[]): number {
  const boxed = extractBoxed(prediction);
  return boxed === undefined ? 0 : anls(boxed, accepted);
}

export const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Standard error of the mean: sample standard deviation (n − 1) over √n; 0 below two values. */
export function standardError(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  const variance = xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1);
  return Math.sqrt(variance / xs.length);
}
