import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { JobRecord } from './job-record.js';

/** Job folders under <dataDir>/jobs; job.json is rewritten atomically (temp file, fsync, rename). */
export class JobStore {
  constructor(readonly dataDir: string) {}

  dir(id: string): string {
    return join(this.dataDir, 'jobs', id);
  }

  async save(job: JobRecord): Promise<void> {
    const dir = this.dir(job.id);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `job.json.tmp-${process.pid}`);
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(job, null, 2) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, 'job.json'));
  }

  async loadAll(): Promise<JobRecord[]> {
    const root = join(this.dataDir, 'jobs');
    if (!existsSync(root)) return [];
    const jobs: JobRecord[] = [];
    for (const id of await readdir(root)) {
      const file = join(root, id, 'job.json');
      if (!existsSync(file)) continue;
      try {
        jobs.push(JSON.parse(await readFile(file, 'utf8')) as JobRecord);
      } catch {
        // A job.json is only ever replaced by rename, so this is not a torn write; skip what we cannot read.
      }
    }
    return jobs.sort((a, b) => a.created_at - b.created_at);
  }
}
