import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint, recoverCheckpoint, SAVE_STEPS, saveCheckpoint, type SaveStep } from '../../src/training/checkpoint.js';
import type { AdamState } from '../../src/training/optimizer.js';
import type { Weights } from '../../src/model/weights.js';

class Crash extends Error {}

function state(step: number): { weights: Weights; adam: AdamState } {
  const weights: Weights = new Map([['w', { dims: [2, 3], data: Float32Array.from({ length: 6 }, (_, i) => step + i) }]]);
  const adam: AdamState = { step, m: new Map([['w', new Float32Array(6).fill(step)]]), v: new Map([['w', new Float32Array(6).fill(-step)]]) };
  return { weights, adam };
}

// A save stopped at each of its instants (the process dies there: nothing after it runs) must leave
// a complete checkpoint that the next start resumes from: the new one once its manifest is on disk,
// the old one before; never none, and never a torn mix.
for (const crashAt of SAVE_STEPS) {
  test(`a save of step 20 interrupted at "${crashAt}" resumes from the last complete checkpoint`, async () => {
    const out = mkdtempSync(join(tmpdir(), 'prs-ckpt-'));
    const dir = join(out, 'checkpoint');
    const s10 = state(10);
    await saveCheckpoint(dir, s10.weights, s10.adam, { step: 10, dataPosition: 100 });
    const s20 = state(20);
    await assert.rejects(saveCheckpoint(dir, s20.weights, s20.adam, { step: 20, dataPosition: 200 }, (at: SaveStep) => {
      if (at === crashAt) throw new Crash(at);
    }), Crash);
    const messages: string[] = [];
    assert.equal(await recoverCheckpoint(dir, (m) => messages.push(m)), true, 'no checkpoint to resume from');
    const resumed = await loadCheckpoint(dir);
    const expected = SAVE_STEPS.indexOf(crashAt) >= SAVE_STEPS.indexOf('manifest-written') ? 20 : 10;
    assert.equal(resumed.meta.step, expected);
    assert.equal(resumed.meta.dataPosition, expected * 10);
    assert.deepEqual([...resumed.weights.get('w')!.data], [...state(expected).weights.get('w')!.data], 'weights from another checkpoint than the meta');
    assert.equal(resumed.adam.step, expected);
    assert.deepEqual(readdirSync(out), ['checkpoint'], 'leftovers of the interrupted save remain');
    // Whatever was left behind is reported, so a resume from an older step is not silent.
    if (crashAt !== 'old-removed') assert.match(messages.join('\n'), /interrupted checkpoint save/);
  });
}

test('no checkpoint and no leftovers: nothing to resume, nothing said', async () => {
  const out = mkdtempSync(join(tmpdir(), 'prs-ckpt-'));
  const messages: string[] = [];
  assert.equal(await recoverCheckpoint(join(out, 'checkpoint'), (m) => messages.push(m)), false);
  assert.deepEqual(messages, []);
});

test('an interrupted first save (no earlier checkpoint, manifest not written) leaves nothing to resume and is cleaned up', async () => {
  const out = mkdtempSync(join(tmpdir(), 'prs-ckpt-'));
  const dir = join(out, 'checkpoint');
  const s = state(5);
  await assert.rejects(saveCheckpoint(dir, s.weights, s.adam, { step: 5, dataPosition: 50 }, (at) => {
    if (at === 'optimizer-written') throw new Crash(at);
  }), Crash);
  const messages: string[] = [];
  assert.equal(await recoverCheckpoint(dir, (m) => messages.push(m)), false);
  assert.match(messages.join('\n'), /no complete checkpoint/);
  assert.deepEqual(readdirSync(out), []);
});
