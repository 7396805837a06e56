/** A one-line progress bar on stderr (redrawn in place on a terminal, a line every few seconds otherwise). */
export class ProgressBar {
  private lastLine = 0;
  private readonly started = performance.now();

  constructor(private readonly total: number, private readonly label: string, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  static formatDuration(seconds: number): string {
    if (!Number.isFinite(seconds)) return '?';
    const s = Math.round(seconds);
    return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
  }

  update(done: number, fields: Record<string, string | number>, startedAt = 0): void {
    const elapsed = (performance.now() - this.started) / 1000;
    const rate = (done - startedAt) / Math.max(elapsed, 1e-9);
    const eta = (this.total - done) / rate;
    const width = 24;
    const filled = Math.round((width * done) / this.total);
    const text = Object.entries(fields).map(([k, v]) => `${k} ${typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4)) : v}`).join('  ');
    const line = `${this.label} ${done}/${this.total} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${text}  ETA ${ProgressBar.formatDuration(eta)}`;
    const now = performance.now();
    if (this.stream.isTTY) this.stream.write(`\r${line}\x1b[K${done === this.total ? '\n' : ''}`);
    else if (done === this.total || now - this.lastLine > 2000) {
      this.stream.write(`${line}\n`);
      this.lastLine = now;
    }
  }
}
