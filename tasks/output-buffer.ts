/**
 * Collects a command's output up to a byte limit. Everything past the limit is counted and dropped, so a command
 * that prints gigabytes costs no memory; a short tail of the stream is kept to find the end marker of a persistent
 * shell session even after the limit.
 */
export class OutputBuffer {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private tail = Buffer.alloc(0);
  /** Bytes received in all. */
  total = 0;

  constructor(
    private readonly limitBytes: number,
    private readonly tailBytes = 512,
  ) {}

  push(chunk: Buffer): void {
    if (this.headBytes < this.limitBytes) {
      const kept = chunk.subarray(0, this.limitBytes - this.headBytes);
      this.head.push(kept);
      this.headBytes += kept.length;
    }
    this.total += chunk.length;
    const joined = Buffer.concat([this.tail, chunk]);
    this.tail = joined.subarray(Math.max(0, joined.length - this.tailBytes));
  }

  /** The last bytes received (at most `tailBytes`), as text, and where they start in the stream. */
  tailText(): { text: string; start: number } {
    return { text: this.tail.toString('latin1'), start: this.total - this.tail.length };
  }

  /** The first `length` bytes of the stream (or all received), cut at the limit. */
  text(length = this.total): { output: string; truncated: boolean } {
    const wanted = Math.min(length, this.total);
    const head = Buffer.concat(this.head);
    return {
      output: head.subarray(0, Math.min(wanted, head.length)).toString('utf8'),
      truncated: wanted > head.length,
    };
  }
}

/** Where a session's end marker line (`\n<marker> <exit code>\n`) starts in the stream, and the exit code it reports. */
export function findEndMarker(buffer: OutputBuffer, marker: string): { start: number; exitCode: number } | undefined {
  const { text, start } = buffer.tailText();
  const match = new RegExp(`\\n${marker} (\\d+)\\n`).exec(text);
  if (!match) return undefined;
  return { start: start + match.index, exitCode: Number(match[1]) };
}
