import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SUITES, suiteGenerator } from '../../../src/training/tasks/index.js';
import { VSTAR_DEFAULTS } from '../../../src/training/tasks/vstar-syn.js';

test('suite option overrides: a number replaces the default, a range draws per seed, deterministically', async () => {
  assert.equal(suiteGenerator('vstar-syn'), SUITES['vstar-syn'], 'no overrides: the suite itself');
  const gen = suiteGenerator('vstar-syn', { targetSize: [8, 40], distractors: 0 });
  const sizes = new Set<number>();
  for (let seed = 0; seed < 12; seed++) {
    const [a, b] = await Promise.all([gen(seed), gen(seed)]);
    assert.deepEqual(a.region, b.region, 'same seed, same task');
    const side = a.region![2] - a.region![0];
    assert.ok(side >= 8 && side <= 40, `target side ${side}`);
    sizes.add(side);
  }
  assert.ok(sizes.size > 3, 'the range spreads over seeds');
  const fixed = await suiteGenerator('vstar-syn', { targetSize: VSTAR_DEFAULTS.targetSize })(5);
  assert.deepEqual(fixed.region, (await SUITES['vstar-syn'](5)).region);
  assert.throws(() => suiteGenerator('vstar-syn', { size: 3 }), /vstar-syn has no option "size" \(options: width, height, targetSize, decoys, distractors\)/);
  assert.throws(() => suiteGenerator('nope'), /unknown suite "nope"/);
});
