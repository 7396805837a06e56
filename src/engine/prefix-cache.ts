import type { KvPoolHandle } from './onnx-model.js';

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

  constructor(private readonly pool: KvPoolHandle, readonly maxBlocks: number) {}

  /**
   * Walks the chain of `ids`' whole blocks up to `upTo` tokens, marking each as most recently used.
   * A block not in the cache comes from `miss` (and is cached), or ends the walk when it gives none.
   */
  private walk(ids: number[], upTo: number, miss: (block: number) => Block | undefined): Block[] {
    const found: Block[] = [];
    let parent = 0;
    for (let b = 0; (b + 1) * BLOCK_TOKENS <= upTo; b++) {
      const key = `${parent}:${ids.slice(b * BLOCK_TOKENS, (b + 1) * BLOCK_TOKENS).join(',')}`;
      const block = this.blocks.get(key) ?? miss(b);
      if (!block) break;
      this.blocks.delete(key);
      this.blocks.set(key, block);
      while (this.blocks.size > this.maxBlocks) this.blocks.delete(this.blocks.keys().next().value!);
      found.push(block);
      parent = block.id;
    }
    return found;
  }

  /**
   * Writes the longest cached prefix of `ids` (at most `limit` tokens) into an empty slot and
   * returns how many tokens it covers.
   */
  async restore(slot: number, ids: number[], limit: number): Promise<number> {
    const found = this.walk(ids, limit, () => undefined);
    for (const [b, block] of found.entries()) await this.pool.write(slot, b * BLOCK_TOKENS, block.keys, block.values, BLOCK_TOKENS);
    return found.length * BLOCK_TOKENS;
  }

  /** Caches the whole blocks of `ids` [0, upTo) that a slot now holds (reading only the blocks not cached yet). */
  async store(slot: number, ids: number[], upTo: number): Promise<void> {
    const have = this.walk(ids, upTo, () => undefined).length;
    const read = new Map<number, { keys: Float32Array[]; values: Float32Array[] }>();
    for (let b = have; (b + 1) * BLOCK_TOKENS <= upTo; b++) read.set(b, await this.pool.read(slot, b * BLOCK_TOKENS, BLOCK_TOKENS));
    this.walk(ids, upTo, (b) => {
      const kv = read.get(b);
      return kv && { id: this.nextId++, ...kv };
    });
  }
}
