import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SUITES, suiteGenerator } from '../../../src/training/tasks/index.js';
import { VSTAR_DEFAULTS } from '../../../src/training/tasks/vstar-syn.js';
import { RlConfigSchema } from '../../../src/training/rl.js';
import { SftConfigSchema } from '../../../src/training/sft.js';

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
  assert.throws(() => suiteGenerator('tally-syn', { palette: 0 }), /suite tally-syn option "palette" takes integers in \[1, 4\] \(got 0\)/);
  assert.throws(() => suiteGenerator('vstar-syn', { targetSize: [40, 8] }), /"targetSize": the range \[40,8\] is reversed/);
});

test('options that each pass their range but together do not fit the image fail with what does not fit', async () => {
  await assert.rejects(suiteGenerator('tally-syn', { objectSize: 200, cols: 8 })(1), /tally-syn: a 8x4 tray of 200 px objects \(1618x810 px\) does not fit a 1280x960 image/);
  await assert.rejects(suiteGenerator('infovqa-syn', { fontSize: 128 })(1), /infovqa-syn: a key table of 5 rows .* does not fit a 1280x960 image/);
  await assert.rejects(suiteGenerator('vstar-syn', { width: 128, targetSize: 120 })(1), /a 120 px square with its 65 px margin does not fit a 128x960 image/);
});

test('a training config names per-suite options only for its suites, and only options they have', () => {
  for (const schema of [SftConfigSchema, RlConfigSchema]) {
    const parse = (suite_options: object) => schema.safeParse({ base_model: 'm', out: 'o', data: { suites: ['vstar-syn'], suite_options } });
    assert.ok(parse({ 'vstar-syn': { targetSize: 40 } }).success);
    const stray = parse({ 'tally-syn': { objectSize: 8 } });
    assert.ok(!stray.success);
    assert.match(stray.error.issues[0]!.message, /options for suite "tally-syn", which is not in suites \(vstar-syn\)/);
    assert.deepEqual(stray.error.issues[0]!.path, ['data', 'suite_options', 'tally-syn']);
    const unknown = parse({ 'vstar-syn': { size: 3 } });
    assert.ok(!unknown.success);
    assert.match(unknown.error.issues[0]!.message, /vstar-syn has no option "size"/);
    // A bad value is refused when the config is read, not hours into the run when its task is drawn.
    const bad = parse({ 'vstar-syn': { targetSize: -4, decoys: [0, 9], width: 640.5 } });
    assert.ok(!bad.success);
    assert.deepEqual(bad.error.issues.map((i) => i.path.at(-1)), ['targetSize', 'decoys', 'width']);
    assert.match(bad.error.issues[1]!.message, /option "decoys" takes integers in \[0, 3\] \(got \[0,9\]\)/);
  }
});
