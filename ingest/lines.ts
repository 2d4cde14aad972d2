import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { firstInvalidUtf8Byte } from './json-text.js';

export interface Line {
  /** 1-based line number. */
  number: number;
  /** The line's text; where its bytes are not UTF-8 (`notUtf8`), with replacement characters in place of them. */
  text: string;
  /** False for a last line that the file ends in the middle of (no final newline). */
  terminated: boolean;
  /**
   * Set when the line's bytes are not valid UTF-8: the byte offset, from the line's start, of the first bad byte. Such
   * a line must be refused, not loaded with the replacement characters that `text` holds in place of its bytes.
   */
  notUtf8?: number;
}

/**
 * Streams a file's lines without holding the file in memory. Splitting happens on bytes, so a multi-byte character
 * cut between chunks is decoded whole; lines are returned in order with their numbers. Lines whose bytes are not
 * UTF-8 are marked (`notUtf8`).
 */
export async function* readLines(file: string): AsyncGenerator<Line> {
  for await (const lines of readLineBatches(file)) yield* lines;
}

/**
 * Like `readLines`, a few hundred lines at a time, for hot paths where a promise per line costs. Lines are decoded
 * only when their group is handed out, so that few of them are alive at once (fewer survivors for the garbage
 * collector to copy). UTF-8 is checked once for all the whole lines of a chunk (a fast, vectorised check); only a
 * chunk that fails it is checked line by line.
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
      yield [checkedLine(head, 0, head.length - 1, number, true)];
      start = newline + 1;
      newline = chunk.indexOf(10, start);
    }
    const last = chunk.lastIndexOf(10);
    const wholeLinesAreUtf8 = last < start || isUtf8(chunk.subarray(start, last));
    while (newline !== -1) {
      const lines: Line[] = [];
      while (newline !== -1 && lines.length < groupLines) {
        number++;
        lines.push(
          wholeLinesAreUtf8
            ? { number, text: lineText(chunk, start, newline), terminated: true }
            : checkedLine(chunk, start, newline, number, true),
        );
        start = newline + 1;
        newline = chunk.indexOf(10, start);
      }
      yield lines;
    }
    if (start < chunk.length) pending = chunk.subarray(start);
  }
  if (pending && pending.length > 0) {
    number++;
    yield [checkedLine(pending, 0, pending.length, number, false)];
  }
}

/** The line that ends at `end` (a newline, or the end of the file), checked for UTF-8 on its own. */
function checkedLine(buffer: Buffer, start: number, end: number, number: number, terminated: boolean): Line {
  const text = terminated ? lineText(buffer, start, end) : buffer.toString('utf8', start, end);
  const bytes = buffer.subarray(start, end);
  if (isUtf8(bytes)) return { number, text, terminated };
  return { number, text, terminated, notUtf8: firstInvalidUtf8Byte(bytes) };
}

/** The text of the line that ends at `newline`, without a carriage return before it. */
function lineText(buffer: Buffer, start: number, newline: number): string {
  const end = newline > start && buffer[newline - 1] === 13 ? newline - 1 : newline;
  return buffer.toString('utf8', start, end);
}
