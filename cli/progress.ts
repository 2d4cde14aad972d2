/**
 * Progress on stderr: one line rewritten in place on a terminal; elsewhere (CI, pipes) a line every few seconds,
 * so logs stay short.
 */
export function createProgress(stream: NodeJS.WriteStream = process.stderr) {
  const interactive = stream.isTTY === true;
  let lastLine = '';
  let lastPrinted = Date.now();
  return {
    update(line: string) {
      lastLine = line;
      if (interactive) {
        stream.write(`\r${line}\u001b[K`);
      } else if (Date.now() - lastPrinted > 5000) {
        lastPrinted = Date.now();
        stream.write(`${line}\n`);
      }
    },
    done() {
      if (interactive && lastLine !== '') stream.write(`\r${lastLine}\u001b[K\n`);
    },
  };
}
