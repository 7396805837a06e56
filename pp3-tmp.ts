import { preprocessSync } from './src/model/processor/patchify.js';
import { loadModelFiles } from './src/model/model-dir.js';
const p = (await loadModelFiles('./models/default')).config.processor;
const im = { data: new Uint8Array(364*280*3).map((_, i) => i * 7), width: 364, height: 280 };
const im2 = { data: Buffer.from(new Uint8Array(252*420*3).map((_, i) => i * 7)), width: 252, height: 420 };
const ts=[];
for (let r=0;r<30;r++){ const t=performance.now(); preprocessSync({frames:[r%2?im:im2],width:r%2?364:252,height:r%2?280:420,processor:p}); ts.push((performance.now()-t).toFixed(2)); }
console.log(ts.join(' '));
