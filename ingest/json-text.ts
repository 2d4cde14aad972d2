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
 * Parses one line of a JSON-lines file. A failure says whether the line is invalid or the file ends inside it
 * (`record` names what a line holds, e.g. "record" or "export").
 */
export function parseJsonLine(
  line: { text: string; terminated: boolean },
  record: string,
): { ok: true; value: unknown } | { ok: false; reason: string } {
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
