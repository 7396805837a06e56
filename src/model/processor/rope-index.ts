/**
 * M-RoPE position ids, computed incrementally as tokens are appended, equal to Qwen2-VL's
 * get_rope_index (as transformers.js implements it): text tokens advance one position on all
 * three axes; a visual block of grid (t, h/m, w/m) starts at the next position and spreads over
 * (t, row, column); the text after it resumes at the block's largest position + 1.
 */
export class RopePositions {
  /** The next free position (max so far + 1). */
  next = 0;

  /** Appends positions for `count` text tokens into [3][...] arrays. */
  text(count: number, out: [number[], number[], number[]]): void {
    for (let i = 0; i < count; i++) {
      out[0].push(this.next);
      out[1].push(this.next);
      out[2].push(this.next);
      this.next++;
    }
  }

  /**
   * Appends positions for one visual block (grid in merged units). With `timeInterval` (Qwen2.5-VL's
   * videos: tokens_per_second x second_per_grid_ts) temporal patch t sits at floor(t x interval) and
   * the text after the block resumes at max(h, w) + the block's start, as transformers' get_rope_index
   * computes it; without, t advances one position per patch and the text resumes after the largest.
   */
  visual(gridT: number, gridH: number, gridW: number, out: [number[], number[], number[]], timeInterval?: number): void {
    const offset = this.next;
    for (let t = 0; t < gridT; t++) {
      // float32 product then truncation, as torch's (arange(t) * interval).long() on a float32 interval.
      const tPos = offset + (timeInterval === undefined ? t : Math.floor(Math.fround(t * timeInterval)));
      for (let h = 0; h < gridH; h++) {
        for (let w = 0; w < gridW; w++) {
          out[0].push(tPos);
          out[1].push(offset + h);
          out[2].push(offset + w);
        }
      }
    }
    this.next = offset + (timeInterval === undefined ? Math.max(gridT, gridH, gridW) : Math.max(gridH, gridW));
  }
}
