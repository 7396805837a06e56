// A worker thread does not inherit the tsx loader of the thread that started it (Node 20: neither
// register() nor an inherited `--import tsx` applies to a worker's modules), so this plain-JS entry
// registers tsx in the worker, then loads the TypeScript module named in workerData.entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
