// Assembles src/model/processor/vips-bicubic.wat into the .wasm beside it (committed, so running the
// server needs no assembler). Run after editing the .wat: node --import tsx scripts/build-wasm.ts
// A test checks the committed binary is this script's output for the committed source.
import { readFileSync, writeFileSync } from 'node:fs';
import wabtInit from 'wabt';

export async function assemble(watPath: string): Promise<Buffer> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(watPath, readFileSync(watPath, 'utf8'), { simd: true });
  try {
    module.validate();
    return Buffer.from(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

export const WAT = new URL('../src/model/processor/vips-bicubic.wat', import.meta.url);
export const WASM = new URL('../src/model/processor/vips-bicubic.wasm', import.meta.url);

if (import.meta.url === `file://${process.argv[1]}`) {
  const binary = await assemble(WAT.pathname);
  writeFileSync(WASM, binary);
  console.log(`${WASM.pathname}: ${binary.length} bytes`);
}
