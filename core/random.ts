/**
 * A small seeded source of uniform numbers in [0, 1) (mulberry32): the same seed gives the same sequence on every
 * machine. Clustering, the gate's bootstrap and the benchmark generators draw from it, never from `Math.random`.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}
