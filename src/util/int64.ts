const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A setter for a BigInt64Array's elements from int32-range integers (positions, lengths) that makes no
 * BigInt: it writes the element's two 32-bit words. A prefill's positions are three per token, and a BigInt each
 * was ~5 ms of the event loop's thread a benchmark run (16 prompts of ~740 tokens).
 */
export function int64Setter(target: BigInt64Array): (index: number, value: number) => void {
  const check = (v: number) => {
    if ((v | 0) !== v) throw new RangeError(`${v} is not a 32-bit integer`);
  };
  if (!LITTLE_ENDIAN) {
    return (i, v) => {
      check(v);
      target[i] = BigInt(v);
    };
  }
  const words = new Int32Array(target.buffer, target.byteOffset, target.length * 2);
  return (i, v) => {
    check(v);
    words[2 * i] = v;
    words[2 * i + 1] = v < 0 ? -1 : 0;
  };
}
