import type { Graph } from '../../model/onnx/ir.js';

/**
 * Turns a graph's parameters into graph inputs, so one ONNX Runtime session serves every training
 * step with the current weights fed in (inputs are not copied by onnxruntime-node).
 * Returns the parameter names in sorted order.
 */
export function paramsAsInputs(g: Graph): string[] {
  const names = [...g.params.keys()].sort();
  for (const name of names) g.input(name, g.floatType, g.params.get(name)!.dims);
  g.params.clear();
  return names;
}
