/**
 * Maps `items` through `f` with at most `limit` calls in flight, keeping the input order. The
 * engine refuses requests past its waiting-queue bound, so a caller with thousands of tasks
 * (an eval dataset) feeds it a window at a time instead of all at once. A limit below 1 counts as 1.
 */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, f: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return out;
}
