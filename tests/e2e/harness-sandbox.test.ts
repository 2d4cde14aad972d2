import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBubblewrap } from '../../tasks/index.js';
import { writeSuite } from '../tasks/temporary-suite.js';
import { type RunJson, scratchFolder, selfharness, sql } from './support-harness.js';

/**
 * A command that reaches the network fails inside the sandbox, through `selfharness run`: a task whose reference
 * solution fetches a page from a server on this machine's loopback address fails in bubblewrap (the sandbox has a
 * loopback of its own, and no route anywhere else), while the same task passes with `--unsafe-no-sandbox`, which
 * shows that the solution does reach the server when a network is there.
 *
 * The other checks of this part live beside the code they check: every bundled task passes with the oracle
 * (tests/cli/run.test.ts), and every verifier fails on a workspace where only the setup ran (tests/tasks/suite.test.ts;
 * through the command line, tests/e2e/harness-openai.test.ts).
 */

const hasBubblewrap = findBubblewrap() !== undefined;
const TOKEN = 'reached-the-host-server';

describe.skipIf(!hasBubblewrap)('the network inside selfharness run', () => {
  const scratch = scratchFolder('e2e-sandbox');
  let server: Server;
  let requests = 0;
  let suite: string;

  beforeAll(async () => {
    server = createServer((_request, response) => {
      requests += 1;
      response.end(`${TOKEN}\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    suite = writeSuite([
      {
        id: 'fetch-from-host',
        // One step: fetch the page over a raw TCP connection, record how each attempt went, write done.txt on success.
        solve: [
          `( exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3 ) > page.txt 2> error.txt`,
          `grep -q ${TOKEN} page.txt && echo done > done.txt`,
          'echo "host: $(cat error.txt)"',
          `echo "outside: $(timeout 3 bash -c 'exec 3<>/dev/tcp/192.0.2.1/80' 2>&1 | head -n 1)"`,
          'echo "interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")"',
          'true',
        ].join('\n'),
      },
    ]);
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(suite, { recursive: true, force: true });
    scratch.remove();
  });

  async function runFetch(database: string, extra: readonly string[]): Promise<{ run: RunJson; output: string }> {
    const result = await selfharness(database, [
      'run',
      '--suite',
      suite,
      '--tasks',
      'fetch-from-host',
      '--model',
      'oracle',
      '--json',
      ...extra,
    ]);
    const [row] = await sql<{ output: string }>(
      database,
      "SELECT json_extract_string(data, '$.output') AS output FROM events WHERE type = 'tool-result'",
    );
    return { run: JSON.parse(result.stdout) as RunJson, output: row?.output ?? '' };
  }

  it('fails a task whose solution needs a connection, and the connection never arrives', async () => {
    const { run, output } = await runFetch(join(scratch.path, 'sandboxed.duckdb'), []);
    expect(run.results).toMatchObject([{ task: 'fetch-from-host', outcome: 'failed', failureReason: 'tests_failed' }]);
    expect(requests).toBe(0);
    expect(output).toMatch(/host: .*Connection refused/);
    expect(output).toMatch(/outside: .*Network is unreachable/);
    expect(output).toMatch(/interfaces: lo \n/);
  });

  it('passes the same task unsandboxed, where the solution does reach the server', async () => {
    const before = requests;
    const { run } = await runFetch(join(scratch.path, 'unsandboxed.duckdb'), ['--unsafe-no-sandbox']);
    expect(run.results).toMatchObject([{ task: 'fetch-from-host', outcome: 'passed' }]);
    expect(requests).toBe(before + 1);
  });
});
