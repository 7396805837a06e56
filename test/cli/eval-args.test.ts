import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEvalArgs } from '../../src/cli/eval-args.js';
import { evalCommandLine, type EvalArgs } from '../../src/training/eval-command.js';

const argvOf = (line: string) => line.split(' ').slice(2);

test('eval command line parses back to the same arguments', () => {
  const cases: EvalArgs[] = [
    parseEvalArgs([]),
    parseEvalArgs(['--ablations', '--suite', 'vstar-syn,tally-syn', '--n', '200']),
    { model: 'runs/x/model', ablations: true, suites: ['mvbench-syn'], dataset: 'data/tasks.jsonl', tools: false, n: 7, seed: 5, maxTokens: 99, json: true },
  ];
  for (const args of cases) assert.deepEqual(parseEvalArgs(argvOf(evalCommandLine(args))), args);
});

test('eval command line leaves defaults out', () => {
  assert.equal(evalCommandLine(parseEvalArgs(['--ablations', '--suite', 'vstar-syn', '--n', '200'])), 'pixelreasoner eval --ablations --suite vstar-syn --n 200');
  assert.equal(evalCommandLine(parseEvalArgs(['--no-tools'])), 'pixelreasoner eval --no-tools');
});
