import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const HERE = import.meta.dirname;
const ROOT = join(HERE, '../..');

/**
 * The Python that has torch and transformers (the oracle): $PIXELREASONER_HF_PYTHON, else the venv
 * .ci/run makes. Fails with how to make one when neither works.
 */
export function oraclePython(): string {
  const candidates = [process.env.PIXELREASONER_HF_PYTHON, join(ROOT, '.venv-oracle/bin/python')].filter((p): p is string => !!p);
  for (const python of candidates) {
    if (!existsSync(python)) continue;
    const r = spawnSync(python, ['-c', 'import torch, transformers, safetensors, PIL'], { encoding: 'utf8' });
    if (r.status === 0) return python;
  }
  throw new Error(
    'the transformers oracle is not installed: python3 -m venv .venv-oracle && .venv-oracle/bin/pip install '
    + '--index-url <your package index> torch transformers safetensors pillow numpy (or set PIXELREASONER_HF_PYTHON); .ci/run does this',
  );
}

/** Runs oracle.py with one JSON request; returns its JSON answer. */
export function oracle<T>(python: string, request: Record<string, unknown>): T {
  const out = execFileSync(python, [join(HERE, 'oracle.py')], { input: JSON.stringify(request), maxBuffer: 1 << 26, stdio: ['pipe', 'pipe', 'pipe'] });
  return JSON.parse(out.toString().trim().split('\n').at(-1)!) as T;
}

/** A random Qwen2.5-VL checkpoint written by transformers' save_pretrained (see make_checkpoint.py). */
export function makeCheckpoint(python: string, out: string, variant: string, seed = 0): void {
  execFileSync(python, [join(HERE, 'make_checkpoint.py'), '--out', out, '--variant', variant, '--tokenizer-from', join(ROOT, 'models/default'), '--seed', String(seed)], { stdio: 'pipe' });
}

export interface OracleGeneration {
  prompt_ids: number[];
  tokens: number[];
  logprobs: number[];
  /** Gap between the two largest logits at each step (a tie would make greedy tokens arbitrary). */
  margins: number[];
}
