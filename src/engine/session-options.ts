import { availableParallelism } from 'node:os';
import type * as ort from 'onnxruntime-node';

/** ONNX Runtime session options shared by serving and training sessions. */
export function sessionOptions(opts: { threads?: number; executionProviders?: string[] } = {}): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: opts.threads ?? availableParallelism(),
    interOpNumThreads: 1,
    executionProviders: opts.executionProviders ?? providersFromEnv() ?? ['cpu'],
    graphOptimizationLevel: 'all',
    // Spin-waiting intra-op threads burn the cores other requests' tools, HTTP and other processes need.
    extra: { session: { intra_op: { allow_spinning: process.env.PIXELREASONER_ORT_SPIN === '1' ? '1' : '0' } } },
  };
}

/** PIXELREASONER_EXECUTION_PROVIDERS=cuda,cpu picks providers for every session (the GPU benchmark script sets it). */
function providersFromEnv(): string[] | undefined {
  const list = process.env.PIXELREASONER_EXECUTION_PROVIDERS?.split(',').map((s) => s.trim()).filter(Boolean);
  return list?.length ? list : undefined;
}
