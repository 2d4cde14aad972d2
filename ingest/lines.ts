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

/**
 * Like `readLines`, a few hundred lines at a time, for hot paths where a promise per line costs. Lines are decoded
 * only when their group is handed out, so that few of them are alive at once (fewer survivors for the garbage
 * collector to copy).
 */
export async function* readLineBatches(file: string, groupLines = 256): AsyncGenerator<Line[]> {
  let pending: Buffer | undefined;
  let number = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let start = 0;
    let newline = chunk.indexOf(10);
    if (pending) {
      if (newline === -1) {
        pending = Buffer.concat([pending, chunk]);
        continue;
      }
      // Only the line cut between two chunks is copied, not the chunk.
      const head = Buffer.concat([pending, chunk.subarray(0, newline + 1)]);
      pending = undefined;
      number++;
      yield [{ number, text: lineText(head, 0, head.length - 1), terminated: true }];
      start = newline + 1;
      newline = chunk.indexOf(10, start);
    }
    while (newline !== -1) {
      const lines: Line[] = [];
      while (newline !== -1 && lines.length < groupLines) {
        number++;
        lines.push({ number, text: lineText(chunk, start, newline), terminated: true });
        start = newline + 1;
        newline = chunk.indexOf(10, start);
      }
      yield lines;
    }
    if (start < chunk.length) pending = chunk.subarray(start);
  }
  if (pending && pending.length > 0) {
    number++;
    yield [{ number, text: pending.toString('utf8'), terminated: false }];
  }
}

/** The text of the line that ends at `newline`, without a carriage return before it. */
function lineText(buffer: Buffer, start: number, newline: number): string {
  const end = newline > start && buffer[newline - 1] === 13 ? newline - 1 : newline;
  return buffer.toString('utf8', start, end);
}
