import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Graph } from '../../../src/model/onnx/ir.js';
import { appendBackward } from '../../../src/training/autodiff/backward.js';
import { openGraph } from '../../../src/training/session.js';
import { Rng } from '../../../src/util/random.js';

interface Case {
  name: string;
  /** float32 only where ONNX Runtime has no float64 kernel (Erf); central differences then use a larger step. */
  float32?: boolean;
  inputs: { shape: number[]; positive?: boolean; int?: number }[];
  build: (g: Graph, x: string[]) => string;
}

/** Central differences of a float64 graph's scalar output against its reverse-mode gradients. */
async function checkGradients(c: Case): Promise<number> {
  const ft = c.float32 ? 'float32' : 'float64';
  const g = new Graph(c.name, ft);
  const names = c.inputs.map((inp, i) => g.input(`x${i}`, inp.int ? 'int64' : ft, inp.shape));
  const y = c.build(g, names);
  const loss = g.op('ReduceSum', [g.op('Mul', [y, g.op('Sin', [y])])], { keepdims: { i: 0 } });
  g.output(loss, 'loss', ft, []);
  const floatInputs = names.filter((_, i) => !c.inputs[i]!.int);
  const grads = appendBackward(g, loss, floatInputs);
  grads.forEach((d, i) => g.output(d, `grad_${floatInputs[i]}`, ft, c.inputs[names.indexOf(floatInputs[i]!)]!.shape));
  const session = await openGraph(g, { threads: 1 });
  const rng = new Rng(c.name.length * 7919);
  const values = c.inputs.map((inp) => {
    const size = inp.shape.reduce((a, b) => a * b, 1);
    if (inp.int) return BigInt64Array.from({ length: size }, () => BigInt(rng.int(inp.int!)));
    const v = Array.from({ length: size }, () => (inp.positive ? 1 + rng.next() : rng.normal()));
    return c.float32 ? Float32Array.from(v) : Float64Array.from(v);
  });
  const feeds = () => Object.fromEntries(names.map((n, i) => [n, new ort.Tensor(c.inputs[i]!.int ? 'int64' : ft, values[i]!, c.inputs[i]!.shape)]));
  const out = await session.run(feeds());
  let worst = 0;
  for (const name of floatInputs) {
    const i = names.indexOf(name);
    const x = values[i] as Float64Array | Float32Array;
    const analytic = out[`grad_${name}`]!.data as Float64Array | Float32Array;
    assert.equal(analytic.length, x.length, `${c.name}: gradient of ${name} has the input's size`);
    const numeric = new Float64Array(x.length);
    const eps = c.float32 ? 1e-2 : 1e-6;
    for (let k = 0; k < x.length; k++) {
      const saved = x[k]!;
      x[k] = saved + eps;
      const up = ((await session.run(feeds(), ['loss'])).loss!.data as Float64Array | Float32Array)[0]!;
      x[k] = saved - eps;
      const down = ((await session.run(feeds(), ['loss'])).loss!.data as Float64Array | Float32Array)[0]!;
      x[k] = saved;
      numeric[k] = (up - down) / (2 * eps);
    }
    let diff = 0;
    for (let k = 0; k < x.length; k++) {
      diff += (analytic[k]! - numeric[k]!) ** 2;
    }
    const norm = Math.sqrt(numeric.reduce((s, v) => s + v * v, 0));
    worst = Math.max(worst, Math.sqrt(diff) / Math.max(norm, 1e-12));
  }
  await session.release();
  return worst;
}

const cases: Case[] = [
  { name: 'Add (broadcast)', inputs: [{ shape: [2, 3, 4] }, { shape: [4] }], build: (g, [a, b]) => g.op('Add', [a!, b!]) },
  { name: 'Sub (broadcast both)', inputs: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], build: (g, [a, b]) => g.op('Sub', [a!, b!]) },
  { name: 'Mul (broadcast)', inputs: [{ shape: [2, 3, 4] }, { shape: [2, 1, 4] }], build: (g, [a, b]) => g.op('Mul', [a!, b!]) },
  { name: 'Div (broadcast)', inputs: [{ shape: [2, 3] }, { shape: [3], positive: true }], build: (g, [a, b]) => g.op('Div', [a!, b!]) },
  { name: 'Neg', inputs: [{ shape: [2, 5] }], build: (g, [a]) => g.op('Neg', [a!]) },
  { name: 'Sqrt', inputs: [{ shape: [2, 5], positive: true }], build: (g, [a]) => g.op('Sqrt', [a!]) },
  { name: 'Exp', inputs: [{ shape: [2, 5] }], build: (g, [a]) => g.op('Exp', [a!]) },
  { name: 'Log', inputs: [{ shape: [2, 5], positive: true }], build: (g, [a]) => g.op('Log', [a!]) },
  { name: 'Sigmoid', inputs: [{ shape: [2, 5] }], build: (g, [a]) => g.op('Sigmoid', [a!]) },
  { name: 'Sin', inputs: [{ shape: [2, 5] }], build: (g, [a]) => g.op('Sin', [a!]) },
  { name: 'Cos', inputs: [{ shape: [2, 5] }], build: (g, [a]) => g.op('Cos', [a!]) },
  { name: 'Erf (float32: no float64 kernel)', float32: true, inputs: [{ shape: [2, 5] }], build: (g, [a]) => g.op('Erf', [a!]) },
  { name: 'Identity', inputs: [{ shape: [3] }], build: (g, [a]) => g.op('Identity', [a!]) },
  { name: 'Cast (float to float)', inputs: [{ shape: [3] }], build: (g, [a]) => g.op('Cast', [a!], { to: { i: 11 } }) },
  { name: 'MatMul (batch x weight)', inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }], build: (g, [a, b]) => g.op('MatMul', [a!, b!]) },
  { name: 'MatMul (batched, broadcast)', inputs: [{ shape: [2, 3, 4, 5] }, { shape: [2, 1, 5, 3] }], build: (g, [a, b]) => g.op('MatMul', [a!, b!]) },
  { name: 'MatMul (left operand broadcast)', inputs: [{ shape: [3, 4] }, { shape: [2, 4, 5] }], build: (g, [a, b]) => g.op('MatMul', [a!, b!]) },
  { name: 'Softmax', inputs: [{ shape: [2, 3, 5] }], build: (g, [a]) => g.op('Softmax', [a!], { axis: { i: -1 } }) },
  { name: 'LogSoftmax', inputs: [{ shape: [2, 3, 5] }], build: (g, [a]) => g.op('LogSoftmax', [a!], { axis: { i: -1 } }) },
  { name: 'ReduceSum (keepdims)', inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.op('ReduceSum', [a!, g.int64([-1])], { keepdims: { i: 1 } }) },
  { name: 'ReduceSum (drop axes)', inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.op('ReduceSum', [a!, g.int64([0, 2])], { keepdims: { i: 0 } }) },
  { name: 'ReduceMean', inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.op('ReduceMean', [a!], { axes: { ints: [-1] }, keepdims: { i: 1 } }) },
  { name: 'Reshape', inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.op('Reshape', [a!, g.int64([0, 4, -1])]) },
  { name: 'Flatten', inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.op('Flatten', [a!], { axis: { i: 2 } }) },
  { name: 'Transpose', inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.op('Transpose', [a!], { perm: { ints: [2, 0, 1] } }) },
  { name: 'Unsqueeze', inputs: [{ shape: [2, 3] }], build: (g, [a]) => g.op('Unsqueeze', [a!, g.int64([1])]) },
  { name: 'Squeeze', inputs: [{ shape: [2, 1, 3] }], build: (g, [a]) => g.op('Squeeze', [a!, g.int64([1])]) },
  { name: 'Concat', inputs: [{ shape: [2, 3] }, { shape: [2, 2] }], build: (g, [a, b]) => g.op('Concat', [a!, b!], { axis: { i: -1 } }) },
  {
    name: 'Split (both outputs used)', inputs: [{ shape: [2, 4] }],
    build: (g, [a]) => {
      const [x, y] = g.opN('Split', [a!, g.int64([1, 3])], 2, { axis: { i: -1 } });
      return g.op('Concat', [g.op('Neg', [y!]), g.op('Mul', [x!, x!])], { axis: { i: -1 } });
    },
  },
  { name: 'Split (one output unused)', inputs: [{ shape: [2, 4] }], build: (g, [a]) => g.opN('Split', [a!, g.int64([2, 2])], 2, { axis: { i: -1 } })[1]! },
  { name: 'Gather (repeated ids)', inputs: [{ shape: [5, 3] }, { shape: [2, 4], int: 5 }], build: (g, [t, ids]) => g.op('Gather', [t!, ids!], { axis: { i: 0 } }) },
  { name: 'GatherElements', inputs: [{ shape: [2, 3, 5] }, { shape: [2, 3, 1], int: 5 }], build: (g, [d, i]) => g.op('GatherElements', [d!, i!], { axis: { i: -1 } }) },
  {
    name: 'Where', inputs: [{ shape: [2, 3] }, { shape: [3] }],
    build: (g, [a, b]) => g.op('Where', [g.constTensor({ dtype: 'bool', dims: [2, 3], data: Uint8Array.from([1, 0, 1, 0, 0, 1]) }), a!, b!]),
  },
];

for (const c of cases) {
  test(`gradient rule ${c.name} matches central differences${c.float32 ? '' : ' (float64)'}`, async () => {
    const err = await checkGradients(c);
    console.log(`${c.name}: relative error ${err.toExponential(2)}`);
    assert.ok(err <= 1e-3, `relative error ${err}`);
  });
}
