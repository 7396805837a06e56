import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { JobRecord } from './job-record.js';
import { writeSynced } from '../util/files.js';

/** Job folders under <dataDir>/jobs; job.json is rewritten atomically (temp file, fsync, rename). */
export class JobStore {
  /** Pending write per job: saves of one job run one after another (they share a temp file name). */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(readonly dataDir: string) {}

  dir(id: string): string {
    return join(this.dataDir, 'jobs', id);
  }

  /** Persists the job as it is now; concurrent saves are queued, never interleaved. */
  save(job: JobRecord): Promise<void> {
    const snapshot = JSON.stringify(job, null, 2) + '\n';
    const next = (this.writes.get(job.id) ?? Promise.resolve()).catch(() => {}).then(() => this.write(job.id, snapshot));
    this.writes.set(job.id, next);
    return next;
  }

  private async write(id: string, text: string): Promise<void> {
    const dir = this.dir(id);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `job.json.tmp-${process.pid}`);
    await writeSynced(tmp, text);
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
