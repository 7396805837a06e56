import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adamwStep, learningRate, newAdamState, OPTIMIZER_DEFAULTS } from '../../src/training/optimizer.js';

const opts = { ...OPTIMIZER_DEFAULTS, lr: 1e-2, warmupSteps: 4, totalSteps: 14, minLrRatio: 0.1, weightDecay: 0.1, clip: 1 };

test('learning rate: linear warm-up, then cosine down to min_lr_ratio', () => {
  assert.deepEqual([0, 1, 2, 3].map((s) => learningRate(s, opts)), [0.0025, 0.005, 0.0075, 0.01]);
  assert.ok(Math.abs(learningRate(4, opts) - 0.01) < 1e-12);
  assert.ok(Math.abs(learningRate(9, opts) - (0.001 + 0.009 * 0.5)) < 1e-12, 'half way: midpoint');
  assert.ok(Math.abs(learningRate(14, opts) - 0.001) < 1e-12);
  assert.ok(Math.abs(learningRate(100, opts) - 0.001) < 1e-12);
});

test('AdamW: clipping by global norm, bias-corrected first step, decoupled decay on matrices only', () => {
  const params = new Map([['w.weight', Float32Array.of(1, -2)], ['n.norm.weight', Float32Array.of(1)]]);
  const grads = new Map([['w.weight', Float32Array.of(3, 0)], ['n.norm.weight', Float32Array.of(4)]]);
  const state = newAdamState(params);
  const { gradNorm, lr } = adamwStep(params, grads, state, opts);
  assert.equal(gradNorm, 5);
  assert.equal(lr, 0.0025);
  // First step: m/c1 = g, v/c2 = g^2, so the update is lr * sign(g) (eps aside); decay lr*wd*p on matrices.
  const w = params.get('w.weight')!;
  assert.ok(Math.abs(w[0]! - (1 - 0.0025 * 0.1 * 1 - 0.0025)) < 1e-6);
  assert.ok(Math.abs(w[1]! - (-2 - 0.0025 * 0.1 * -2)) < 1e-6, 'zero gradient: decay only');
  assert.ok(Math.abs(params.get('n.norm.weight')![0]! - (1 - 0.0025)) < 1e-6, 'no decay on norms');
  assert.equal(state.step, 1);
  assert.ok(Math.abs(state.m.get('w.weight')![0]! - 0.1 * 3 * 0.2) < 1e-6, 'moments see the clipped gradient (x 1/5)');
});
