import type { KvPoolHandle } from './onnx-model.js';

export const BLOCK_TOKENS = 32;

/**
 * Automatic prefix caching (vLLM's, on by default there too) for the text that opens a prompt: the
 * system prompt and the tool definitions, ~270 tokens that every tool-using request repeats. Only
 * text before the first visual token is cached: its M-RoPE positions are [i, i, i], so its keys
 * and values are a function of the token ids alone. Blocks are chained (a block's key names its
 * parent block), so a hit is always a whole prefix; least recently used blocks are evicted first.
 * This side keeps the index only: the blocks' keys and values stay next to the pool (on the
 * model's runtime), so a restore or a store is one runtime call and no KV crosses threads.
 */
export class PrefixCache {
  /** Block id by chain key, least recently used first. */
  private readonly blocks = new Map<string, number>();
  private nextId = 1;
  /** Blocks dropped from the index, freed on the runtime with the next store. */
  private evicted: number[] = [];

  constructor(private readonly pool: KvPoolHandle, readonly maxBlocks: number) {}

  /**
   * Walks the chain of `ids`' whole blocks up to `upTo` tokens, marking each as most recently used.
   * A block not in the cache is added when `add` says so (its id is returned with the rest), or
   * ends the walk.
   */
  private walk(ids: number[], upTo: number, add: boolean): { found: number[]; added: { key: string; block: number; at: number }[] } {
    const found: number[] = [];
    const added: { key: string; block: number; at: number }[] = [];
    let parent = 0;
    for (let b = 0; (b + 1) * BLOCK_TOKENS <= upTo; b++) {
      const key = `${parent}:${ids.slice(b * BLOCK_TOKENS, (b + 1) * BLOCK_TOKENS).join(',')}`;
      let block = this.blocks.get(key);
      if (block === undefined) {
        if (!add) break;
        block = this.nextId++;
        added.push({ key, block, at: b * BLOCK_TOKENS });
      }
      this.blocks.delete(key);
      this.blocks.set(key, block);
      found.push(block);
      parent = block;
    }
    while (this.blocks.size > this.maxBlocks) {
      const [key, block] = this.blocks.entries().next().value!;
      this.blocks.delete(key);
      this.evicted.push(block);
    }
    return { found, added };
  }

  /**
   * Writes the longest cached prefix of `ids` (at most `limit` tokens) into an empty slot and
   * returns how many tokens it covers.
   */
  async restore(slot: number, ids: number[], limit: number): Promise<number> {
    const { found } = this.walk(ids, limit, false);
    if (found.length === 0) return 0;
    try {
      await this.pool.restoreBlocks(slot, found, BLOCK_TOKENS);
    } catch {
      // A miss, not a failed request: the prompt is prefilled from position 0, over whatever was written.
      return 0;
    }
    return found.length * BLOCK_TOKENS;
  }

  /** Caches the whole blocks of `ids` [0, upTo) that a slot now holds (copying only the blocks not cached yet); a failure is a miss later. */
  async store(slot: number, ids: number[], upTo: number): Promise<void> {
    const { added } = this.walk(ids, upTo, true);
    // A block added and evicted in the same walk (a chain longer than the cache) is never saved.
    const evicted = new Set(this.evicted.splice(0));
    const saves = added.filter((a) => !evicted.has(a.block));
    if (saves.length === 0 && evicted.size === 0) return;
    try {
      await this.pool.saveBlocks(slot, saves.map(({ block, at }) => ({ block, at })), BLOCK_TOKENS, [...evicted]);
    } catch {
      // Not cached, and the slot's own KV is intact, so the request goes on. The index must name only blocks the
      // runtime holds: the new ones leave it, and the evicted ones are freed with the next store.
      for (const a of saves) this.blocks.delete(a.key);
      this.evicted.push(...evicted);
    }
  }
}
