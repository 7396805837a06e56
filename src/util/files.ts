import { open } from 'node:fs/promises';

/** Writes a file and fsyncs it before closing, so a rename after it publishes complete data even across a crash. */
export async function writeSynced(path: string, data: Uint8Array | string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes renames in `dir` durable: a directory's entries are on disk only once the directory itself is fsynced. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
