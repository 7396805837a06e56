import * as ort from 'onnxruntime-node';
import type { Graph } from '../model/onnx/ir.js';
import { serializeModel } from '../model/onnx/serialize.js';
import { sessionOptions } from '../engine/session-options.js';

export interface GraphSessionOptions {
  threads?: number;
  executionProviders?: string[];
}

/** An ONNX Runtime session for an in-memory graph with no parameters left (they are inputs). */
export function openGraph(g: Graph, opts: GraphSessionOptions = {}): Promise<ort.InferenceSession> {
  if (g.params.size > 0) throw new Error(`graph ${g.name} still has parameters; turn them into inputs first`);
  const bytes = serializeModel(g, (name) => {
    throw new Error(`unexpected parameter ${name}`);
  });
  // threads unset = all cores, as serving.
  return ort.InferenceSession.create(bytes, sessionOptions(opts));
}
