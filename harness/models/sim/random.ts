/**
 * The simulated model's only source of randomness: a small seeded generator (mulberry32 over a 32-bit state mixed
 * from the seed). Every draw a simulated episode makes comes from one instance of it, in a fixed order, so the same
 * seed and the same observations give the same behaviour, on every machine.
 */
export interface Random {
  /** A number in [0, 1). */
  next(): number;
  /** True with the given probability (0 never, 1 always). */
  chance(probability: number): boolean;
  /** An integer in [minimum, maximum], both included. */
  integer(minimum: number, maximum: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** The key of one entry, chosen with probability proportional to its (non-negative) weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K;
}

/** A generator for a seed. Any finite number works; equal seeds give equal sequences. */
export function createRandom(seed: number): Random {
  if (!Number.isFinite(seed)) throw new RangeError(`The seed must be a finite number, got ${seed}`);
  let state = mixSeed(seed);
  const next = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    chance: (probability) => (probability <= 0 ? false : probability >= 1 ? true : next() < probability),
    integer: (minimum, maximum) => {
      if (maximum <= minimum) return minimum;
      return minimum + Math.floor(next() * (maximum - minimum + 1));
    },
    pick: (items) => {
      if (items.length === 0) throw new RangeError('Cannot pick from an empty list');
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
    weighted: (weights) => {
      const entries = Object.entries(weights) as [keyof typeof weights & string, number][];
      const total = entries.reduce((sum, [, weight]) => sum + Math.max(0, weight), 0);
      if (total <= 0) throw new RangeError('Cannot choose among weights that are all zero');
      let point = next() * total;
      for (const [key, weight] of entries) {
        point -= Math.max(0, weight);
        if (point < 0) return key;
      }
      return entries[entries.length - 1]![0];
    },
  };
}

/** Spreads nearby seeds (0, 1, 2 …) over the whole 32-bit state space, also for seeds beyond 32 bits. */
function mixSeed(seed: number): number {
  const high = Math.floor(seed / 4294967296) | 0;
  let value = (seed | 0) ^ Math.imul(high, 0x9e3779b1);
  value = Math.imul(value ^ (value >>> 16), 0x85ebca6b);
  value = Math.imul(value ^ (value >>> 13), 0xc2b2ae35);
  return (value ^ (value >>> 16)) | 0;
}
