import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initModelDir, KVPOOL_GRAPH_VERSION, ONNX_FILES } from './model-dir.js';

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The trained default model committed to the repository (absent until one is trained and bundled). */
export const BUNDLED_MODEL_DIR = join(PACKAGE_ROOT, 'models/default');
/** Fallback generated on first start: random tiny weights, seed 0 (git-ignored). */
export const RANDOM_MODEL_DIR = join(PACKAGE_ROOT, 'models/default-random');

/** Returns the bundled model, or generates the random-initialised tiny model on first use. */
export async function resolveDefaultModel(log: (msg: string) => void = () => {}): Promise<string> {
  if (existsSync(join(BUNDLED_MODEL_DIR, 'config.json'))) return BUNDLED_MODEL_DIR;
  const version = join(RANDOM_MODEL_DIR, ONNX_FILES.decoderKvPoolVersion);
  if (!existsSync(version) || readFileSync(version, 'utf8').trim() !== KVPOOL_GRAPH_VERSION) {
    log(`no bundled model; generating a random-initialised tiny model in ${RANDOM_MODEL_DIR}`);
    await initModelDir(RANDOM_MODEL_DIR, { preset: 'tiny', seed: 0 });
  }
  return RANDOM_MODEL_DIR;
}
