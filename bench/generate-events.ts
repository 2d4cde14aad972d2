import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

/**
 * Writes `count` native events (runs of about 100 events, payloads of about 300 bytes) to an NDJSON file, streamed.
 * Deterministic: the same count gives the same file.
 */
export async function generateNativeEvents(file: string, count: number, eventsPerRun = 100): Promise<void> {
  const out = createWriteStream(file);
  const base = Date.UTC(2026, 0, 1);
  let written = 0;
  for (let run = 0; written < count; run++) {
    const runId = `bench:run-${run}`;
    const perRun = Math.min(eventsPerRun, count - written);
    for (let index = 0; index < perRun; index++) {
      const time = new Date(base + run * 60_000 + index * 500).toISOString();
      const step = Math.floor(index / 3) + 1;
      let line: string;
      if (index === 0) {
        line = JSON.stringify({
          id: `${runId}#start`,
          type: 'run-start',
          runId,
          time,
          data: {
            task: `task-${run % 40}`,
            dataset: 'bench',
            model: `model-${run % 3}`,
            agent: 'bench-agent',
            attempt: run % 2,
            split: 'held-in',
            instruction:
              'Write the numbers from the input file, sorted, to /app/output.txt and make sure the test passes.',
          },
        });
      } else if (index === perRun - 1) {
        line = JSON.stringify({
          id: `${runId}#end`,
          type: 'run-end',
          runId,
          time,
          data: {
            outcome: run % 3 === 0 ? 'passed' : 'failed',
            reward: run % 3 === 0 ? 1 : 0,
            failureReason: run % 3 === 0 ? undefined : 'tests failed: test_output_exists',
            promptTokens: 12000 + run,
            completionTokens: 900,
          },
        });
      } else if (index % 3 === 1) {
        line = JSON.stringify({
          id: `${runId}#step-${step}`,
          type: 'step-create',
          runId,
          time,
          data: {
            step,
            role: 'agent',
            message: `I will inspect the workspace and then run the build. Step ${step} of the plan: check the files that exist and read the failing test output carefully.`,
            model: `model-${run % 3}`,
            promptTokens: 1500,
            completionTokens: 80,
          },
        });
      } else if (index % 3 === 2) {
        line = JSON.stringify({
          id: `${runId}#call-c${step}`,
          type: 'tool-call',
          runId,
          time,
          data: {
            step,
            callId: `c${step}`,
            tool: 'shell',
            arguments: { command: `cd /app && make build && ./run --input data-${step}.csv` },
            command: `cd /app && make build && ./run --input data-${step}.csv`,
          },
        });
      } else {
        line = JSON.stringify({
          id: `${runId}#result-c${step}`,
          type: 'tool-result',
          runId,
          time,
          data: {
            step,
            callId: `c${step}`,
            output: `make: *** No rule to make target 'build'.  Stop.\nexit status 2 after 0.3s; the workspace has Makefile.in, src/, tests/`,
            exitCode: step % 4 === 0 ? 0 : 2,
          },
        });
      }
      if (!out.write(`${line}\n`)) await once(out, 'drain');
      written++;
    }
  }
  out.end();
  await once(out, 'finish');
}
