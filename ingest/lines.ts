import { createReadStream } from 'node:fs';

export interface Line {
  /** 1-based line number. */
  number: number;
  text: string;
  /** False for a last line that the file ends in the middle of (no final newline). */
  terminated: boolean;
}

/**
 * Streams a file's lines without holding the file in memory. Splitting happens on bytes, so a multi-byte character
 * cut between chunks is decoded whole; lines are returned in order with their numbers.
 */
export async function* readLines(file: string): AsyncGenerator<Line> {
  for await (const lines of readLineBatches(file)) yield* lines;
}

/** Like `readLines`, a chunk's lines at a time (about 1 MiB), for hot paths where a promise per line costs. */
export async function* readLineBatches(file: string): AsyncGenerator<Line[]> {
  let pending: Buffer | undefined;
  let number = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
    let start = 0;
    let newline = buffer.indexOf(10, start);
    const lines: Line[] = [];
    while (newline !== -1) {
      number++;
      const end = newline > start && buffer[newline - 1] === 13 ? newline - 1 : newline;
      lines.push({ number, text: buffer.toString('utf8', start, end), terminated: true });
      start = newline + 1;
      newline = buffer.indexOf(10, start);
    }
    pending = start < buffer.length ? buffer.subarray(start) : undefined;
    buffer = Buffer.alloc(0);
    if (lines.length > 0) yield lines;
  }
  if (pending && pending.length > 0) {
    number++;
    yield [{ number, text: pending.toString('utf8'), terminated: false }];
  }
}
