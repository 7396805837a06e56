import type { KvPool } from './kv-pool.js';

/** One cached block: per layer the keys and values of BLOCK_TOKENS positions, [kvH, BLOCK_TOKENS, D]. */
interface Block {
  id: number;
  keys: Float32Array[];
  values: Float32Array[];
}

export const BLOCK_TOKENS = 32;

/**
 * Automatic prefix caching (vLLM's, on by default there too) for the text that opens a prompt: the
 * system prompt and the tool definitions, ~270 tokens that every tool-using request repeats. Only
 * text before the first visual token is cached: its M-RoPE positions are [i, i, i], so its keys
 * and values are a function of the token ids alone. Blocks are chained (a block's key names its
 * parent block), so a hit is always a whole prefix; least recently used blocks are evicted first.
 */
export class PrefixCache {
  private readonly blocks = new Map<string, Block>();
  private nextId = 1;

  constructor(private readonly pool: KvPool, readonly maxBlocks: number) {}

  private key(parent: number, ids: number[], block: number): string {
    return `${parent}:${ids.slice(block * BLOCK_TOKENS, (block + 1) * BLOCK_TOKENS).join(',')}`;
  }

  /** Whole blocks of `ids` (up to `limit` tokens) that are cached, in order; each hit becomes most recent. */
  private lookup(ids: number[], limit: number): Block[] {
    const found: Block[] = [];
    let parent = 0;
    for (let b = 0; (b + 1) * BLOCK_TOKENS <= limit; b++) {
      const k = this.key(parent, ids, b);
      const block = this.blocks.get(k);
      if (!block) break;
      this.blocks.delete(k);
      this.blocks.set(k, block);
      found.push(block);
      parent = block.id;
    }
    return found;
  }

  /**
   * Writes the longest cached prefix of `ids` (at most `limit` tokens) into an empty slot and
   * returns how many tokens it covers.
   */
  restore(slot: number, ids: number[], limit: number): number {
    const found = this.lookup(ids, limit);
    this.pool.ensureCapacity(this.pool.lengthOf(slot) + found.length * BLOCK_TOKENS);
    for (const block of found) this.pool.write(slot, block.keys, block.values, BLOCK_TOKENS, [0]);
    return found.length * BLOCK_TOKENS;
  }

  /** Caches the whole blocks of `ids` [0, upTo) that a slot now holds; returns the tokens covered. */
  store(slot: number, ids: number[], upTo: number): number {
    let parent = 0;
    let b = 0;
    for (; (b + 1) * BLOCK_TOKENS <= upTo; b++) {
      const k = this.key(parent, ids, b);
      let block = this.blocks.get(k);
      if (!block) {
        const { keys, values } = this.pool.read(slot, b * BLOCK_TOKENS, BLOCK_TOKENS);
        block = { id: this.nextId++, keys, values };
        this.blocks.set(k, block);
        while (this.blocks.size > this.maxBlocks) this.blocks.delete(this.blocks.keys().next().value!);
      }
      parent = block.id;
    }
    return b * BLOCK_TOKENS;
  }

  get size(): number {
    return this.blocks.size;
  }
}
