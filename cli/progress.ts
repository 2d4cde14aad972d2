/**
 * Progress on stderr: one line rewritten in place on a terminal; elsewhere (CI, pipes) a line every few seconds,
 * so logs stay short.
 */
export function createProgress(stream: NodeJS.WriteStream = process.stderr) {
  const interactive = stream.isTTY === true;
  let lastLine = '';
  let lastPrinted = Date.now();
  const intervalMs = Number(process.env.SELFHARNESS_PROGRESS_INTERVAL_MS ?? 5000);
  return {
    update(line: string) {
      lastLine = line;
      if (interactive) {
        stream.write(`\r${line}\u001b[K`);
      } else if (Date.now() - lastPrinted >= intervalMs) {
        lastPrinted = Date.now();
        stream.write(`${line}\n`);
      }
    },
    done() {
      if (interactive && lastLine !== '') stream.write(`\r${lastLine}\u001b[K\n`);
    },
  };
}
