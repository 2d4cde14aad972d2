import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { hasSharedTraces, sharedTracesDir } from '../support/shared-traces.js';

const fixtures = resolve(import.meta.dirname, '../fixtures');

/** One file of a workspace the fuzzer may mutate. */
export interface Member {
  /** Absolute path inside the workspace. */
  path: string;
  /**
   * The unit the file belongs to (a trial or run folder, or the file itself): runs read from other units must load
   * exactly as in the baseline whatever happens to this file.
   */
  unit: string;
  /** Whether the importer reads the file as JSON, so that a file that no longer parses must be rejected by name. */
  json: boolean;
  /** A JSON-lines file: each line is a record of its own. */
  lines?: boolean;
  /** Each line is one event (native NDJSON), so that each line must load or be rejected. */
  eventPerLine?: boolean;
}

/** A temp folder holding copies of fixtures (and real samples where present) of one format. */
export interface Workspace {
  format: string;
  root: string;
  members: Member[];
}

interface Copy {
  /** Source path: under tests/fixtures, or under the shared traces with `shared: true`. */
  from: string;
  to: string;
  shared?: boolean;
  /** Text replacements for a second copy of a file whose ids must differ from the first's. */
  rename?: [string, string][];
}

interface MemberSpec {
  path: string;
  unit: string;
  json?: boolean;
  lines?: boolean;
  eventPerLine?: boolean;
  shared?: boolean;
}

interface FormatSpec {
  copies: Copy[];
  members: MemberSpec[];
}

const TB1_TRIAL = 'hello-world/hello-world.1-of-2.2025-01-02__03-04-05';
const TB1_REAL_RUN = 'tb1-terminus1/fifo_easy/model_run_logs/qwen3-235b-a22b-instruct-2507';
const TB1_REAL_TRIAL =
  'ea12e283-4f7b-46c7-af40-27f35867841f_terminal_bench_fifo_easy/ea12e283-4f7b-46c7-af40-27f35867841f_terminal_bench_fifo_easy.1-of-1.2025-08-25__17-53-18';
const HARBOR_REAL_TRIAL = 'claude-code-claude-opus-4-5-skills-citation-check-229ca9';
const SWE_AGENT_REAL = 'swe-agent-multi-swe-bench-java/deepseek-chat-v2';
const SWE_AGENT_REAL_TRAJ = 'fasterxml__jackson-dataformat-xml-638.traj';

/**
 * What each format's workspace holds and which files get mutated. Every workspace has at least two units, so that
 * the property "an untouched unit loads exactly as in the baseline" has something to check.
 */
export const formats: Record<string, FormatSpec> = {
  native: {
    copies: [
      { from: 'native/events.ndjson', to: 'a.ndjson' },
      {
        from: 'native/events.ndjson',
        to: 'b.ndjson',
        rename: [
          ['n1', 'm1'],
          ['n2', 'm2'],
        ],
      },
    ],
    members: [{ path: 'a.ndjson', unit: 'a.ndjson', lines: true, eventPerLine: true }],
  },
  otel: {
    copies: [
      { from: 'otel/genai-agent.json', to: 'genai-agent.json' },
      { from: 'otel/openinference-agent.jsonl', to: 'openinference-agent.jsonl' },
      { from: 'otel/split-export', to: 'split-export' },
    ],
    members: [
      { path: 'genai-agent.json', unit: 'genai-agent.json' },
      { path: 'openinference-agent.jsonl', unit: 'openinference-agent.jsonl', lines: true },
      { path: 'split-export/part-1.json', unit: 'split-export' },
    ],
  },
  atif: {
    copies: [
      { from: 'atif/multi-step.json', to: 'multi-step.json' },
      { from: 'atif/linked', to: 'linked' },
      { from: 'atif/gemini-cli-trajectory.json', to: 'real/gemini-cli-trajectory.json', shared: true },
      { from: 'atif/mini-swe-agent-trajectory.json', to: 'real/mini-swe-agent-trajectory.json', shared: true },
    ],
    members: [
      { path: 'multi-step.json', unit: 'multi-step.json' },
      { path: 'linked/trajectory.json', unit: 'linked' },
      { path: 'linked/trajectory.cont-1.json', unit: 'linked' },
      { path: 'linked/subagents/review.json', unit: 'linked' },
      { path: 'real/gemini-cli-trajectory.json', unit: 'real/gemini-cli-trajectory.json', shared: true },
      { path: 'real/mini-swe-agent-trajectory.json', unit: 'real/mini-swe-agent-trajectory.json', shared: true },
    ],
  },
  harbor: {
    copies: [
      { from: 'harbor/jobs/tb2-sample', to: 'jobs/tb2-sample' },
      {
        from: `harbor-trial/claude-opus-4-5-0126-wenbo/${HARBOR_REAL_TRIAL}`,
        to: `real-job/${HARBOR_REAL_TRIAL}`,
        shared: true,
      },
    ],
    members: [
      ...['result.json', 'agent/trajectory.json', 'agent/trajectory.cont-1.json', 'verifier/ctrf.json'].map((file) => ({
        path: `jobs/tb2-sample/fix-git__a1b2c3d/${file}`,
        unit: 'jobs/tb2-sample/fix-git__a1b2c3d',
      })),
      {
        path: 'jobs/tb2-sample/fix-git__a1b2c3d/verifier/reward.txt',
        unit: 'jobs/tb2-sample/fix-git__a1b2c3d',
        json: false,
      },
      ...['result.json', 'agent/trajectory.json', 'verifier/ctrf.json'].map((file) => ({
        path: `jobs/tb2-sample/build-cython__x9y8z7w/${file}`,
        unit: 'jobs/tb2-sample/build-cython__x9y8z7w',
      })),
      ...['result.json', 'verifier/ctrf.json'].map((file) => ({
        path: `real-job/${HARBOR_REAL_TRIAL}/${file}`,
        unit: `real-job/${HARBOR_REAL_TRIAL}`,
        shared: true,
      })),
    ],
  },
  tb1: {
    copies: [
      { from: 'tb1/mini-run', to: 'mini-run' },
      { from: 'tb1/terminus-run', to: 'terminus-run' },
      { from: TB1_REAL_RUN, to: 'real-run', shared: true },
    ],
    members: [
      ...['results.json', 'run_metadata.json', 'tb.lock'].map((file) => ({
        path: `terminus-run/${file}`,
        unit: 'terminus-run',
      })),
      // A trial's own results.json is read only when the run's results.json does not list the trial.
      { path: `terminus-run/${TB1_TRIAL}/results.json`, unit: 'terminus-run', json: false },
      ...['episode-0/response.json', 'episode-1/response.json'].map((file) => ({
        path: `terminus-run/${TB1_TRIAL}/agent-logs/${file}`,
        unit: 'terminus-run',
      })),
      { path: `terminus-run/${TB1_TRIAL}/commands.txt`, unit: 'terminus-run', json: false },
      { path: 'mini-run/results.json', unit: 'mini-run' },
      ...['results.json', `${TB1_REAL_TRIAL}/agent-logs/episode-1/response.json`].map((file) => ({
        path: `real-run/${file}`,
        unit: 'real-run',
        shared: true,
      })),
      { path: `real-run/${TB1_REAL_TRIAL}/results.json`, unit: 'real-run', json: false, shared: true },
    ],
  },
  'swe-agent': {
    copies: [
      { from: 'swe-agent/demo-model', to: 'demo-model' },
      { from: 'swe-agent/loose', to: 'loose' },
      { from: `${SWE_AGENT_REAL}/metadata.yaml`, to: 'real/deepseek-chat-v2/metadata.yaml', shared: true },
      { from: `${SWE_AGENT_REAL}/results`, to: 'real/deepseek-chat-v2/results', shared: true },
      {
        from: `${SWE_AGENT_REAL}/trajs/${SWE_AGENT_REAL_TRAJ}`,
        to: `real/deepseek-chat-v2/trajs/${SWE_AGENT_REAL_TRAJ}`,
        shared: true,
      },
      {
        from: 'swe-agent-example/swe-agent__test-repo-i1.traj',
        to: 'real/example/swe-agent__test-repo-i1.traj',
        shared: true,
      },
    ],
    members: [
      { path: 'demo-model/trajs/acme__widget-1.traj', unit: 'demo-model/trajs/acme__widget-1.traj' },
      // The evaluation report holds no events of its own: every trajectory must still load when it breaks.
      { path: 'demo-model/results/results.json', unit: 'demo-model/results/results.json' },
      { path: 'loose/acme__widget-7.traj', unit: 'loose/acme__widget-7.traj' },
      {
        path: `real/deepseek-chat-v2/trajs/${SWE_AGENT_REAL_TRAJ}`,
        unit: `real/deepseek-chat-v2/trajs/${SWE_AGENT_REAL_TRAJ}`,
        shared: true,
      },
      {
        path: 'real/deepseek-chat-v2/results/results.json',
        unit: 'real/deepseek-chat-v2/results/results.json',
        shared: true,
      },
      {
        path: 'real/example/swe-agent__test-repo-i1.traj',
        unit: 'real/example/swe-agent__test-repo-i1.traj',
        shared: true,
      },
    ],
  },
  'swe-bench': {
    copies: [
      { from: 'swe-bench/swe-bench-pro/traj/gpt-4o-paper', to: 'swe-bench-pro/traj/gpt-4o-paper' },
      {
        from: 'swe-bench/swe-bench-pro/traj/kimi-k2-instruct-10132025',
        to: 'swe-bench-pro/traj/kimi-k2-instruct-10132025',
      },
      {
        from: 'outcomes/swe-bench-pro/traj/claude-4sonnet-10132025',
        to: 'swe-bench-pro/traj/claude-4sonnet-10132025',
        shared: true,
      },
    ],
    members: [
      {
        path: 'swe-bench-pro/traj/gpt-4o-paper/eval_results.json',
        unit: 'swe-bench-pro/traj/gpt-4o-paper/eval_results.json',
      },
      {
        path: 'swe-bench-pro/traj/claude-4sonnet-10132025/eval_results.json',
        unit: 'swe-bench-pro/traj/claude-4sonnet-10132025/eval_results.json',
        shared: true,
      },
    ],
  },
};

/** Copies a format's fixtures (and its real samples when the shared traces are present) into a fresh temp folder. */
export function createWorkspace(format: string): Workspace {
  const spec = formats[format];
  if (!spec) throw new Error(`no fuzz workspace for format ${format}`);
  const root = mkdtempSync(join(tmpdir(), `selfharness-fuzz-${format}-`));
  for (const copy of spec.copies) {
    if (copy.shared && !hasSharedTraces) continue;
    const source = copy.shared ? join(sharedTracesDir, copy.from) : join(fixtures, copy.from);
    if (!existsSync(source)) throw new Error(`fuzz sample missing: ${source}`);
    mkdirSync(dirname(join(root, copy.to)), { recursive: true });
    // The shared traces are read-only; the copies must be writable to be mutated.
    if (copy.rename) {
      const text = copy.rename.reduce(
        (current, [from, to]) => current.replaceAll(from, to),
        readFileSync(source, 'utf8'),
      );
      writeFileSync(join(root, copy.to), text);
    } else cpSync(source, join(root, copy.to), { recursive: true });
  }
  makeWritable(root);
  const members = spec.members
    .filter((member) => !member.shared || hasSharedTraces)
    .map((member) => ({
      path: join(root, member.path),
      unit: join(root, member.unit),
      json: member.json ?? true,
      ...(member.lines ? { lines: true } : {}),
      ...(member.eventPerLine ? { eventPerLine: true } : {}),
    }));
  return { format, root, members };
}

function makeWritable(directory: string): void {
  for (const entry of readdirSync(directory, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    chmodWritable(path, entry.isDirectory());
  }
  chmodWritable(directory, true);
}

function chmodWritable(path: string, isDirectory: boolean): void {
  chmodSync(path, isDirectory ? 0o755 : 0o644);
}
