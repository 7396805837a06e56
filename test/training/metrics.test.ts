import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accuracy, anls, anlsOfPrediction, choiceLetter, extractBoxed, integerAnswer, levenshtein, mean, standardError } from '../../src/training/metrics.js';

test('extractBoxed takes the last \\boxed{} and handles nested braces', () => {
  assert.equal(extractBoxed('first \\boxed{A}, finally \\boxed{\\frac{1}{2}} done'), '\\frac{1}{2}');
  assert.equal(extractBoxed('The answer is \\boxed{ red }.'), 'red');
  assert.equal(extractBoxed('no answer here'), undefined);
  assert.equal(extractBoxed('unclosed \\boxed{abc'), undefined);
});

test('multiple choice is scored by letter, counting by exact integer, text by normalised match', () => {
  assert.equal(choiceLetter('B'), 'B');
  assert.equal(choiceLetter('(c)'), 'C');
  assert.equal(choiceLetter('B: red'), 'B');
  assert.equal(choiceLetter('Blue'), undefined);
  assert.equal(accuracy('I zoomed. \\boxed{B: red}', 'B', 'choice'), 1);
  assert.equal(accuracy('\\boxed{B}', 'C', 'choice'), 0);
  // An option's text names that option (as VLMEvalKit accepts it).
  assert.equal(accuracy('The answer is red. \\boxed{Red}', 'B', 'choice', ['blue', 'red']), 1);
  assert.equal(accuracy('\\boxed{blue}', 'B', 'choice', ['blue', 'red']), 0);
  assert.equal(accuracy('\\boxed{green}', 'B', 'choice', ['blue', 'red']), 0);
  assert.equal(integerAnswer('3 cars'), 3);
  assert.equal(accuracy('There are \\boxed{3 cars}', '3', 'integer'), 1);
  assert.equal(accuracy('\\boxed{4}', '3', 'integer'), 0);
  assert.equal(accuracy('no box: 3', '3', 'integer'), 0);
  assert.equal(accuracy('\\boxed{  Dark  Blue }', 'dark blue', 'text'), 1);
});

test('ANLS against hand-computed values', () => {
  assert.equal(levenshtein('kitten', 'sitting'), 3);
  // "hello" vs "hallo": 1 edit over 5 characters -> NL 0.2 -> 0.8
  assert.ok(Math.abs(anls('hello', ['hallo']) - 0.8) < 1e-12);
  // NL = 1 -> 0; NL exactly 0.5 ("ab" vs "ax") is not < 0.5 -> 0
  assert.equal(anls('abc', ['xyz']), 0);
  assert.equal(anls('ab', ['ax']), 0);
  // lower-cased and trimmed
  assert.equal(anls('  Total ', ['total']), 1);
  // maximised over the accepted answers
  assert.ok(Math.abs(anls('hello', ['xyz', 'hallo']) - 0.8) < 1e-12);
  // averaged over questions: (0.8 + 0 + 1) / 3
  const scores = [anlsOfPrediction('\\boxed{hello}', ['hallo']), anlsOfPrediction('no box', ['x']), anlsOfPrediction('\\boxed{Total}', ['total'])];
  assert.ok(Math.abs(mean(scores) - 0.6) < 1e-12);
});

test('standardError is the sample standard deviation over the square root of n', () => {
  // 186 of 200 right: p = 0.93, s.e. = sqrt(p(1-p)/(n-1)) for 0/1 scores.
  const scores = [...Array<number>(186).fill(1), ...Array<number>(14).fill(0)];
  assert.ok(Math.abs(standardError(scores) - Math.sqrt((0.93 * 0.07) / 199)) < 1e-12);
  assert.ok(Math.abs(standardError([1, 2, 3, 4]) - Math.sqrt(5 / 3 / 4)) < 1e-12);
  assert.equal(standardError([0.5]), 0);
  assert.equal(standardError([]), 0);
  assert.equal(standardError([1, 1, 1]), 0);
});
