import * as ort from 'onnxruntime-node';
import type { Graph } from '../model/onnx/ir.js';
import { serializeModel } from '../model/onnx/serialize.js';

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
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: opts.threads ?? 0,
    interOpNumThreads: 1,
    executionProviders: opts.executionProviders ?? ['cpu'],
    graphOptimizationLevel: 'all',
    // Same policy as serving: spinning intra-op threads would take the cores serving needs.
    extra: { session: { intra_op: { allow_spinning: process.env.PIXELREASONER_ORT_SPIN === '1' ? '1' : '0' } } },
  });
}
