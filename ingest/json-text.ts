export type JsonResult = { ok: true; value: unknown } | { ok: false; position: string; reason: string };

/** Parses JSON text; a failure names the line and column where it stopped and says when the text looks cut off. */
export function parseJson(text: string): JsonResult {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    const message = (error as Error).message;
    const offset = Number(message.match(/at position (\d+)/)?.[1] ?? text.length);
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    const truncated = offset >= text.trimEnd().length;
    return {
      ok: false,
      position: `line ${line} column ${column}`,
      reason: truncated ? `the file ends mid-document (truncated?): ${message}` : message,
    };
  }
}

/**
 * Parses one line of a JSON-lines file. A failure says whether the line is not UTF-8 (`notUtf8`, the offset of its
 * first bad byte, as `readLines` marks it), is invalid JSON, or the file ends inside it (`record` names what a line
 * holds, e.g. "record" or "export"). A line that is not UTF-8 is refused even when its text, with replacement
 * characters in place of the bad bytes, would parse: loading it would store text the source never held.
 */
export function parseJsonLine(
  line: { text: string; terminated: boolean; notUtf8?: number },
  record: string,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  if (line.notUtf8 !== undefined) return { ok: false, reason: notUtf8Reason(line.notUtf8) };
  try {
    return { ok: true, value: JSON.parse(line.text) };
  } catch (error) {
    const message = (error as Error).message;
    return {
      ok: false,
      reason: line.terminated
        ? `invalid JSON: ${message}`
        : `truncated last line (the file ends mid-${record}): ${message}`,
    };
  }
}

/** Why a line that is not UTF-8 is refused, and what to do. */
export function notUtf8Reason(offset: number): string {
  return `the line is not valid UTF-8 (first bad byte at offset ${offset}); save or export the file as UTF-8 and import it again`;
}

/** The offset of the first byte that starts an invalid or incomplete UTF-8 sequence (RFC 3629), or the length. */
export function firstInvalidUtf8Byte(bytes: Uint8Array): number {
  let index = 0;
  while (index < bytes.length) {
    const lead = bytes[index] as number;
    if (lead < 0x80) {
      index++;
      continue;
    }
    const following =
      lead >= 0xc2 && lead <= 0xdf ? 1 : lead >= 0xe0 && lead <= 0xef ? 2 : lead >= 0xf0 && lead <= 0xf4 ? 3 : 0;
    if (following === 0) return index;
    // The second byte's range excludes overlong forms, surrogates and code points above U+10FFFF.
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    const second = bytes[index + 1];
    if (second === undefined || second < low || second > high) return index;
    for (let next = 2; next <= following; next++) {
      const byte = bytes[index + next];
      if (byte === undefined || byte < 0x80 || byte > 0xbf) return index;
    }
    index += following + 1;
  }
  return bytes.length;
}
