import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { describeSchemaError, type Outcome } from '../core/index.js';
import { type Adapter, eventItem, type ParseItem, rejectItem, type SourceUnit } from './adapter.js';
import { decodeUtf8, stringifyRaw } from './atif.js';

const FORMAT = 'tb1';

/**
 * Terminal-Bench 1 run directories (`tb run` output): `run_metadata.json`, `results.json` with one record per trial,
 * `tb.lock`, and `<task_id>/<trial_name>/` folders holding `results.json`, `commands.txt`, `panes/`, `sessions/` and,
 * for Terminus agents, `agent-logs/episode-N/{prompt.txt,response.json}`.
 *
 * Each trial becomes one run with the id `tb1:<run id>:<trial_name>`. Its outcome comes from `is_resolved` alone:
 * true is `passed`, false is `failed`, null is `invalid` (a harness error or timeout, never an agent failure).
 * A trial whose folder is missing (leaderboard submissions keep only the run-level `results.json`) still becomes a
 * run, without steps, so that it counts in outcome statistics.
 */
export const tb1Adapter: Adapter = {
  format: FORMAT,
  description:
    'Terminal-Bench 1 run directories (run_metadata.json, results.json, trial folders) and results.json files',
  claimsDirectory(_directory, entries) {
    const names = new Set(entries);
    if (names.has('run_metadata.json') || names.has('tb.lock')) return true;
    return names.has('results.json') && TRIAL_MARKERS.some((marker) => names.has(marker));
  },
  claimsFile(file, head) {
    const name = basename(file).toLowerCase();
    if (!name.endsWith('results.json')) return false;
    const isRunLevel = /"results"\s*:\s*\[/.test(head) && /"(trial_name|task_id)"/.test(head);
    const isTrial = name === 'results.json' && /"trial_name"/.test(head) && /"task_id"/.test(head);
    return isRunLevel || isTrial;
  },
  async *parse(unit: SourceUnit): AsyncIterable<ParseItem> {
    if (!unit.isDirectory) {
      yield* parseResultsFile(unit.path);
      return;
    }
    const entries = await listEntries(unit.path);
    const isTrial = !entries.has('run_metadata.json') && !entries.has('tb.lock') && entries.has('results.json');
    if (isTrial) yield* parseTrialDirectory(unit.path);
    else yield* parseRunDirectory(unit.path);
  },
};

/** Files and folders that mark a trial folder: `<run>/<task_id>/<trial_name>/`. */
const TRIAL_MARKERS = ['commands.txt', 'agent-logs', 'panes', 'sessions'];

/** How far up from a unit to look for a leaderboard submission folder (`20250829_goose_claude-4-opus`). */
const ANCESTOR_LEVELS = 3;

/** Failed tests listed by name in a failure reason before the rest are counted. */
const LISTED_FAILED_TESTS = 10;

// Source schemas: only the fields this adapter reads. Optional fields that are malformed are dropped, not fatal;
// the fields a run cannot do without (trial_name, task_id, is_resolved) reject the record with a reason.

const optionalText = z.string().nullish().catch(undefined);
const optionalCount = z.number().int().nonnegative().nullish().catch(undefined);
const optionalNumber = z.number().nullish().catch(undefined);
const optionalFlag = z.boolean().nullish().catch(undefined);

const TrialRecord = z.object({
  id: optionalText,
  uuid: optionalText,
  trial_name: z.string().min(1),
  task_id: z.string().min(1),
  instruction: optionalText,
  is_resolved: z.boolean().nullable(),
  failure_mode: optionalText,
  /** Checked on its own (ParserResults): a malformed value is rejected at its position while the run still loads. */
  parser_results: z.unknown().optional(),
  total_input_tokens: optionalCount,
  total_output_tokens: optionalCount,
  trial_started_at: optionalText,
  trial_ended_at: optionalText,
  agent_started_at: optionalText,
  agent_ended_at: optionalText,
  test_started_at: optionalText,
  test_ended_at: optionalText,
});
type TrialRecord = z.infer<typeof TrialRecord>;

const ParserResults = z.record(z.string(), z.string());

const RunResults = z.object({ id: optionalText, results: z.array(z.unknown()) });

const RunMetadata = z.object({
  run_id: optionalText,
  uuid: optionalText,
  agent_name: optionalText,
  model_name: optionalText,
  dataset_name: optionalText,
  dataset_version: optionalText,
  commit_hash: optionalText,
});

const Lockfile = z.object({
  harness: z.object({ version: optionalText }).nullish().catch(undefined),
  agent: z
    .object({ name: optionalText, import_path: optionalText, model_name: optionalText })
    .nullish()
    .catch(undefined),
  dataset: z.object({ name: optionalText, version: optionalText }).nullish().catch(undefined),
});

/** Terminus-1 writes state_analysis/explanation/is_task_complete; Terminus-2 analysis/plan/task_complete. */
const EpisodeResponse = z.object({
  state_analysis: optionalText,
  explanation: optionalText,
  analysis: optionalText,
  plan: optionalText,
  commands: z
    .array(
      z.object({
        keystrokes: z.string(),
        is_blocking: optionalFlag,
        timeout_sec: optionalNumber,
        duration: optionalNumber,
      }),
    )
    .nullish()
    .transform((commands) => commands ?? []),
  is_task_complete: optionalFlag,
  task_complete: optionalFlag,
});
type EpisodeResponse = z.infer<typeof EpisodeResponse>;

const IsoTime = z.iso.datetime({ offset: true, local: true });

/** What every trial of one TB1 run shares. */
interface RunContext {
  /** The TB1 run id: `run_metadata.json`'s run_id, else the run folder's (or file's) name. */
  name: string;
  agent?: string;
  model?: string;
  dataset?: string;
  metadata: Record<string, unknown>;
}

/** Where a trial record was read: its file and JSON position. */
interface RecordSource {
  file: string;
  position: string;
}

type JsonRead = { kind: 'missing' } | { kind: 'invalid'; reject: ParseItem } | { kind: 'parsed'; value: unknown };
type TextRead =
  | { kind: 'missing' }
  | { kind: 'invalid'; reject: ParseItem }
  | { kind: 'read'; file: string; position: string; text: string };

async function* parseRunDirectory(directory: string): AsyncGenerator<ParseItem> {
  const context = yield* loadRunContext(directory, directory);
  const resultsFile = join(directory, 'results.json');
  const done = new Set<string>();
  const results = await readJson(resultsFile, 'whole file');
  if (results.kind === 'invalid') yield results.reject;
  if (results.kind === 'parsed') yield* emitRunResults(context, resultsFile, results.value, directory, done);
  yield* parseUnlistedFolders(context, directory, done);
}

/**
 * Emits every trial record of a run-level results.json. With a run folder, each trial's steps come from
 * `<task_id>/<trial_name>/` where that folder exists; the folders used are added to `done`.
 */
async function* emitRunResults(
  context: RunContext,
  file: string,
  value: unknown,
  runDirectory: string | undefined,
  done: Set<string>,
): AsyncGenerator<ParseItem> {
  const parsed = RunResults.safeParse(value);
  if (!parsed.success) {
    yield reject(
      file,
      'whole file',
      `not a TB1 results.json (no "results" list): ${describeSchemaError(parsed.error)}`,
      value,
    );
    return;
  }
  for (const [index, item] of parsed.data.results.entries()) {
    const source = { file, position: `results[${index}]` };
    const record = TrialRecord.safeParse(item);
    if (!record.success) {
      yield reject(file, source.position, `trial record is unusable: ${describeSchemaError(record.error)}`, item);
      continue;
    }
    const trialDirectory = runDirectory && join(runDirectory, record.data.task_id, record.data.trial_name);
    const hasFolder = trialDirectory !== undefined && (await isDirectory(trialDirectory));
    if (hasFolder) done.add(trialDirectory);
    yield* emitTrial(context, record.data, source, hasFolder ? trialDirectory : undefined);
  }
}

/**
 * Trial folders that the run-level results.json does not list (it is missing, truncated, or the run was cut short),
 * and run folders nested inside this one: both still load.
 */
async function* parseUnlistedFolders(
  context: RunContext,
  directory: string,
  done: Set<string>,
): AsyncGenerator<ParseItem> {
  for (const child of await listDirectories(directory)) {
    const childEntries = await listEntries(child);
    if (childEntries.has('run_metadata.json') || childEntries.has('tb.lock')) {
      yield* parseRunDirectory(child);
      continue;
    }
    for (const trialDirectory of await listDirectories(child)) {
      if (done.has(trialDirectory) || !(await listEntries(trialDirectory)).has('results.json')) continue;
      yield* emitTrialFolder(context, trialDirectory);
    }
  }
}

/** A single trial folder; its run folder is two levels up (`<run>/<task_id>/<trial_name>`). */
async function* parseTrialDirectory(trialDirectory: string): AsyncGenerator<ParseItem> {
  const context = yield* loadRunContext(dirname(dirname(trialDirectory)), trialDirectory);
  yield* emitTrialFolder(context, trialDirectory);
}

/** A trial folder read through its own results.json. */
async function* emitTrialFolder(context: RunContext, trialDirectory: string): AsyncGenerator<ParseItem> {
  const file = join(trialDirectory, 'results.json');
  const results = await readJson(file, 'whole file');
  if (results.kind === 'invalid') yield results.reject;
  if (results.kind !== 'parsed') return;
  const record = TrialRecord.safeParse(results.value);
  if (!record.success) {
    yield reject(file, 'whole file', `trial record is unusable: ${describeSchemaError(record.error)}`, results.value);
    return;
  }
  yield* emitTrial(context, record.data, { file, position: 'whole file' }, trialDirectory);
}

/**
 * A results.json read on its own: a run-level file (`results: [...]`, also the leaderboard's `<time>_results.json`)
 * gives runs without steps; a trial-level one gives its single run.
 */
async function* parseResultsFile(file: string): AsyncGenerator<ParseItem> {
  const results = await readJson(file, 'whole file');
  if (results.kind === 'invalid') yield results.reject;
  if (results.kind !== 'parsed') return;
  const isRunLevel = typeof results.value === 'object' && results.value !== null && 'results' in results.value;
  if (!isRunLevel) {
    yield* parseTrialDirectory(dirname(file));
    return;
  }
  // Beside run_metadata.json the run id is the metadata's; a leaderboard's `<time>_results.json` names its run.
  const isPlainName = basename(file).toLowerCase() === 'results.json';
  const fileName = basename(file).replace(/_*results\.json$/i, '');
  const fallbackName = isPlainName || fileName === '' ? runNameOf(dirname(file)) : fileName;
  const context = yield* loadRunContext(isPlainName ? dirname(file) : undefined, dirname(file), fallbackName);
  yield* emitRunResults(context, file, results.value, undefined, new Set());
}

/**
 * Reads `run_metadata.json` and `tb.lock` of a run folder (either may be absent) and fills what they lack from the
 * folder names: a leaderboard submission folder `YYYYMMDD_<agent>_<model>` and a dataset folder `<name>@<version>`.
 */
async function* loadRunContext(
  runDirectory: string | undefined,
  nearest: string,
  fallbackName?: string,
): AsyncGenerator<ParseItem, RunContext> {
  let metadata: z.infer<typeof RunMetadata> = {};
  let lock: z.infer<typeof Lockfile> = {};
  if (runDirectory !== undefined) {
    const metadataFile = join(runDirectory, 'run_metadata.json');
    const metadataRead = await readJson(metadataFile, 'whole file');
    if (metadataRead.kind === 'invalid') yield metadataRead.reject;
    if (metadataRead.kind === 'parsed') {
      const parsed = RunMetadata.safeParse(metadataRead.value);
      if (parsed.success) metadata = parsed.data;
      else
        yield reject(
          metadataFile,
          'whole file',
          `run_metadata.json is not an object: ${describeSchemaError(parsed.error)}`,
          metadataRead.value,
        );
    }
    const lockFile = join(runDirectory, 'tb.lock');
    const lockRead = await readJson(lockFile, 'whole file');
    if (lockRead.kind === 'invalid') yield lockRead.reject;
    if (lockRead.kind === 'parsed') {
      const parsed = Lockfile.safeParse(lockRead.value);
      if (parsed.success) lock = parsed.data;
      else
        yield reject(
          lockFile,
          'whole file',
          `tb.lock is not an object: ${describeSchemaError(parsed.error)}`,
          lockRead.value,
        );
    }
  }
  const folders = ancestors(runDirectory ?? nearest);
  const submission = folders.map((folder) => /^\d{8}_([^_]+)_(.+)$/.exec(folder)).find((match) => match !== null);
  const datasetFolder = folders
    .map((folder) => /^([A-Za-z0-9][\w.-]*)[@:](\d+(?:\.\d+)+)$/.exec(folder))
    .find((match) => match !== null);
  const datasetName = metadata.dataset_name ?? lock.dataset?.name;
  const datasetVersion = metadata.dataset_version ?? lock.dataset?.version;
  const dataset = datasetName
    ? datasetVersion
      ? `${datasetName}@${datasetVersion}`
      : datasetName
    : datasetFolder
      ? `${datasetFolder[1]}@${datasetFolder[2]}`
      : undefined;
  return {
    name: metadata.run_id ?? fallbackName ?? runNameOf(runDirectory ?? nearest),
    agent: metadata.agent_name ?? lock.agent?.name ?? submission?.[1],
    model: metadata.model_name ?? lock.agent?.model_name ?? submission?.[2],
    dataset,
    metadata: compact({
      runUuid: metadata.uuid,
      commitHash: metadata.commit_hash,
      terminalBenchVersion: lock.harness?.version,
      agentImportPath: lock.agent?.import_path,
      submission: submission?.[0],
    }),
  };
}

/** Emits one trial as a run: start, its steps where the trial folder has them, verification and end. */
async function* emitTrial(
  context: RunContext,
  record: TrialRecord,
  source: RecordSource,
  trialDirectory: string | undefined,
): AsyncGenerator<ParseItem> {
  const runId = `tb1:${context.name}:${record.trial_name}`;
  const eventSource = { format: FORMAT, file: source.file, position: source.position };
  const failureMode = record.failure_mode && record.failure_mode !== 'unset' ? record.failure_mode : undefined;
  const attempt = /\.(\d+)-of-\d+(?:\.|$)/.exec(record.trial_name);
  yield eventItem(
    compact({
      id: `${runId}#start`,
      runId,
      type: 'run-start',
      time: isoTime(record.trial_started_at) ?? isoTime(record.agent_started_at),
      source: eventSource,
      data: compact({
        task: record.task_id,
        dataset: context.dataset,
        model: context.model,
        agent: context.agent,
        attempt: attempt ? Number(attempt[1]) : undefined,
        trialName: record.trial_name,
        instruction: record.instruction ?? undefined,
        metadata: compact({
          ...context.metadata,
          tb1RunId: context.name,
          trialUuid: record.id ?? record.uuid ?? undefined,
          failureMode,
          agentStartedAt: isoTime(record.agent_started_at),
          agentEndedAt: isoTime(record.agent_ended_at),
          testStartedAt: isoTime(record.test_started_at),
          testEndedAt: isoTime(record.test_ended_at),
        }),
      }),
    }),
  );
  if (trialDirectory !== undefined) yield* emitSteps(runId, context.model, trialDirectory);
  const verifyPosition = source.position === 'whole file' ? 'parser_results' : `${source.position}.parser_results`;
  const parserResults = record.parser_results == null ? undefined : ParserResults.safeParse(record.parser_results);
  if (parserResults?.success === false) {
    const reason = `parser_results is not an object of test name → status, so the per-test results are left out (the run still loads): ${describeSchemaError(parserResults.error)}`;
    yield reject(source.file, verifyPosition, reason, record.parser_results);
  }
  const tests = Object.entries(parserResults?.data ?? {}).map(([name, status]) => ({
    name: name === '' ? '(unnamed test)' : name,
    status: testStatus(status),
  }));
  const reward = record.is_resolved === null ? undefined : record.is_resolved ? 1 : 0;
  if (parserResults?.success) {
    yield eventItem(
      compact({
        id: `${runId}#verify`,
        runId,
        type: 'run-verify',
        time: isoTime(record.test_ended_at) ?? isoTime(record.trial_ended_at),
        source: { ...eventSource, position: verifyPosition },
        data: compact({ reward, tests }),
      }),
    );
  }
  const { outcome, failureReason } = decideOutcome(record.is_resolved, failureMode, tests);
  yield eventItem(
    compact({
      id: `${runId}#end`,
      runId,
      type: 'run-end',
      time: isoTime(record.trial_ended_at),
      source: eventSource,
      data: compact({
        outcome,
        reward,
        failureReason,
        promptTokens: record.total_input_tokens ?? undefined,
        completionTokens: record.total_output_tokens ?? undefined,
        startedAt: isoTime(record.trial_started_at),
        endedAt: isoTime(record.trial_ended_at),
      }),
    }),
  );
}

/**
 * `is_resolved` decides the outcome; the failure reason names `failure_mode` (agent_timeout, test_timeout,
 * parse_error, ...) and the failed tests. A passed run keeps its failure_mode in run-start metadata only.
 */
function decideOutcome(
  isResolved: boolean | null,
  failureMode: string | undefined,
  tests: { name: string; status: string }[],
): { outcome: Outcome; failureReason?: string } {
  if (isResolved === true) return { outcome: 'passed' };
  const failed = tests.filter((test) => test.status === 'failed').map((test) => test.name);
  const listed = failed.slice(0, LISTED_FAILED_TESTS).join(', ');
  const more = failed.length > LISTED_FAILED_TESTS ? ` and ${failed.length - LISTED_FAILED_TESTS} more` : '';
  const reasons = [failureMode, failed.length > 0 ? `failed tests: ${listed}${more}` : undefined].filter(
    (reason) => reason !== undefined,
  );
  if (isResolved === false) return { outcome: 'failed', failureReason: reasons.join('; ') || 'unresolved' };
  return { outcome: 'invalid', failureReason: reasons.join('; ') || 'no verdict (is_resolved is null)' };
}

function testStatus(status: string): 'passed' | 'failed' | 'skipped' | 'other' {
  const normalised = status.toLowerCase();
  return normalised === 'passed' || normalised === 'failed' || normalised === 'skipped' ? normalised : 'other';
}

/** Terminus episodes where the trial has them; otherwise the keystrokes of `commands.txt`. */
async function* emitSteps(runId: string, model: string | undefined, trialDirectory: string): AsyncGenerator<ParseItem> {
  const episodes = await listEpisodes(join(trialDirectory, 'agent-logs'));
  if (episodes.length > 0) yield* emitEpisodes(runId, model, trialDirectory, episodes);
  else yield* emitCommands(runId, trialDirectory);
}

interface Episode {
  number: number;
  directory: string;
}

async function listEpisodes(agentLogs: string): Promise<Episode[]> {
  const episodes: Episode[] = [];
  for (const directory of await listDirectories(agentLogs)) {
    const match = /^episode-(\d+)$/.exec(basename(directory));
    if (match) episodes.push({ number: Number(match[1]), directory });
  }
  return episodes.sort((a, b) => a.number - b.number);
}

/**
 * Episode N is step N: its analysis and plan are the message, each command is a tool call with the keystrokes as
 * command, and the terminal the model saw next (episode N+1's prompt.txt, or the post-agent pane after the last
 * episode) is the result of the step's last call. Copies such as `response(1).json` are ignored.
 */
async function* emitEpisodes(
  runId: string,
  model: string | undefined,
  trialDirectory: string,
  episodes: Episode[],
): AsyncGenerator<ParseItem> {
  for (const [index, episode] of episodes.entries()) {
    const name = `episode-${episode.number}`;
    const responseFile = join(episode.directory, 'response.json');
    const read = await readJson(responseFile, `${name}/response.json`);
    if (read.kind === 'missing') {
      yield* rejectUnusedScreen(trialDirectory, episodes, index, 'is missing');
      continue;
    }
    if (read.kind === 'invalid') {
      yield read.reject;
      yield* rejectUnusedScreen(trialDirectory, episodes, index, 'was rejected');
      continue;
    }
    const parsed = EpisodeResponse.safeParse(read.value);
    if (!parsed.success) {
      yield reject(
        responseFile,
        `${name}/response.json`,
        `not a Terminus response: ${describeSchemaError(parsed.error)}`,
        read.value,
      );
      yield* rejectUnusedScreen(trialDirectory, episodes, index, 'was rejected');
      continue;
    }
    const response: EpisodeResponse = parsed.data;
    const step = episode.number;
    const taskComplete = response.is_task_complete ?? response.task_complete ?? undefined;
    yield eventItem({
      id: `${runId}#step-${step}`,
      runId,
      type: 'step-create',
      source: { format: FORMAT, file: responseFile, position: `${name}/response.json` },
      data: compact({
        step,
        role: 'agent',
        message: [response.state_analysis ?? response.analysis, response.explanation ?? response.plan]
          .filter((part) => part !== undefined && part !== null && part !== '')
          .join('\n\n'),
        model,
        extra: compact({ episode: episode.number, taskComplete }),
      }),
    });
    let lastCallId: string | undefined;
    for (const [position, command] of response.commands.entries()) {
      lastCallId = `${step}.${position}`;
      yield eventItem({
        id: `${runId}#call-${lastCallId}`,
        runId,
        type: 'tool-call',
        source: { format: FORMAT, file: responseFile, position: `${name}/response.json commands[${position}]` },
        data: compact({
          step,
          callId: lastCallId,
          tool: 'terminal',
          arguments: compact({
            keystrokes: command.keystrokes,
            isBlocking: command.is_blocking ?? undefined,
            timeoutSec: command.timeout_sec ?? undefined,
            durationSec: command.duration ?? undefined,
          }),
          command: commandText(command.keystrokes),
        }),
      });
    }
    if (lastCallId === undefined) continue;
    const next = episodes[index + 1];
    const screen = next
      ? await readText(join(next.directory, 'prompt.txt'), `episode-${next.number}/prompt.txt`)
      : await readAgentScreen(trialDirectory);
    if (screen.kind === 'invalid') yield screen.reject;
    if (screen.kind !== 'read') continue;
    yield eventItem({
      id: `${runId}#result-${lastCallId}`,
      runId,
      type: 'tool-result',
      source: { format: FORMAT, file: screen.file, position: screen.position },
      data: compact({ step, callId: lastCallId, output: screen.text, error: timeoutNote(screen.text) }),
    });
  }
}

/**
 * The terminal an episode's commands produced is the result of its last call; when the episode's response is rejected
 * or missing there is no call to attach it to, and it gets a reject of its own that says so instead of vanishing.
 */
async function* rejectUnusedScreen(
  trialDirectory: string,
  episodes: Episode[],
  index: number,
  why: 'was rejected' | 'is missing',
): AsyncGenerator<ParseItem> {
  const next = episodes[index + 1];
  const screen = next
    ? await readText(join(next.directory, 'prompt.txt'), `episode-${next.number}/prompt.txt`)
    : await readAgentScreen(trialDirectory);
  if (screen.kind === 'invalid') yield screen.reject;
  if (screen.kind !== 'read') return;
  const episode = `episode-${episodes[index]?.number}`;
  const reason = `not loaded: the terminal after ${episode}, whose response.json ${why}, has no tool call to belong to`;
  yield rejectItem(FORMAT, screen.file, screen.position, reason, screen.text);
}

/** Terminus tells the model when a blocking command did not finish; that is the step's error. */
function timeoutNote(prompt: string): string | undefined {
  if (!prompt.startsWith('Previous command:')) return undefined;
  const match = /The previous command timed out after ([\d.]+) seconds/.exec(prompt);
  return match ? `timed out after ${match[1]} seconds` : undefined;
}

/**
 * Without episodes (installed agents such as mini-swe-agent, the oracle), each line of `commands.txt` up to the test
 * phase is a step with one tool call; the post-agent pane is the result of the last one. Line N is step N.
 */
async function* emitCommands(runId: string, trialDirectory: string): AsyncGenerator<ParseItem> {
  const file = join(trialDirectory, 'commands.txt');
  const read = await readText(file, 'commands.txt');
  if (read.kind === 'invalid') yield read.reject;
  if (read.kind !== 'read') return;
  const lines = read.text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const commands: { line: number; keys: string | string[] }[] = [];
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const keys = parsePythonLiteral(line);
    if (keys === undefined) {
      yield rejectItem(
        FORMAT,
        file,
        `commands.txt line ${index + 1}`,
        'not a Python string or list of strings as TB1 writes keystrokes',
        line,
      );
      continue;
    }
    commands.push({ line: index + 1, keys });
  }
  const agentCommands = commands.slice(0, testPhaseStart(commands.map((command) => keystrokesOf(command.keys))));
  for (const [index, { line, keys }] of agentCommands.entries()) {
    const callId = `${line}.0`;
    const keystrokes = keystrokesOf(keys);
    const position = `commands.txt line ${line}`;
    yield eventItem({
      id: `${runId}#step-${line}`,
      runId,
      type: 'step-create',
      source: { format: FORMAT, file, position },
      data: { step: line, role: 'agent', message: '', extra: { source: 'commands.txt' } },
    });
    yield eventItem({
      id: `${runId}#call-${callId}`,
      runId,
      type: 'tool-call',
      source: { format: FORMAT, file, position },
      data: compact({
        step: line,
        callId,
        tool: 'terminal',
        arguments: { keystrokes },
        command: commandText(keystrokes),
      }),
    });
    if (index !== agentCommands.length - 1) continue;
    const screen = await readAgentScreen(trialDirectory);
    if (screen.kind === 'invalid') yield screen.reject;
    if (screen.kind !== 'read') continue;
    yield eventItem({
      id: `${runId}#result-${callId}`,
      runId,
      type: 'tool-result',
      source: { format: FORMAT, file: screen.file, position: screen.position },
      data: { step: line, callId, output: screen.text },
    });
  }
}

/**
 * The harness's test phase closes commands.txt: `asciinema rec ... /logs/tests.cast` for installed agents, else the
 * `bash /tests/run-tests.sh` line. Everything from there on is the verifier's, not the agent's.
 */
function testPhaseStart(keystrokes: string[]): number {
  const lastIndexOf = (marker: string) => {
    for (let index = keystrokes.length - 1; index >= 0; index--) if (keystrokes[index]?.includes(marker)) return index;
    return -1;
  };
  const byRecording = lastIndexOf('/logs/tests.cast');
  if (byRecording !== -1) return byRecording;
  const byScript = lastIndexOf('/tests/run-tests.sh');
  return byScript !== -1 ? byScript : keystrokes.length;
}

/** tmux key lists become text: `Enter` is a newline, other keys (`C-c`, `C-d`) stay as their names. */
function keystrokesOf(keys: string | string[]): string {
  if (typeof keys === 'string') return keys;
  return keys.map((key) => (key === 'Enter' || key === 'C-m' || key === 'KPEnter' ? '\n' : key)).join('');
}

/** The command as typed, without the Enter that submits it; absent when nothing but Enter was sent. */
function commandText(keystrokes: string): string | undefined {
  const text = keystrokes.replace(/\n+$/, '');
  return text.trim() === '' ? undefined : text;
}

/** The terminal after the agent finished: the post-agent pane, else the raw tmux session log. */
async function readAgentScreen(trialDirectory: string): Promise<TextRead> {
  const pane = await readText(join(trialDirectory, 'panes', 'post-agent.txt'), 'panes/post-agent.txt');
  return pane.kind === 'missing' ? readText(join(trialDirectory, 'sessions', 'agent.log'), 'sessions/agent.log') : pane;
}

/**
 * Parses one line of commands.txt: a Python `repr` of a string (`'ls -la\n'`) or of a list of strings
 * (`['bash ', '/tests/run-tests.sh', 'Enter']`). Returns undefined for anything else.
 */
function parsePythonLiteral(line: string): string | string[] | undefined {
  let position = 0;
  const skipSpaces = () => {
    while (line[position] === ' ' || line[position] === '\t') position++;
  };
  const readString = (): string | undefined => {
    const quote = line[position];
    if (quote !== "'" && quote !== '"') return undefined;
    position++;
    let text = '';
    while (position < line.length) {
      const character = line[position] as string;
      if (character === quote) {
        position++;
        return text;
      }
      if (character !== '\\') {
        text += character;
        position++;
        continue;
      }
      const escaped = line[position + 1];
      if (escaped === undefined) return undefined;
      const simple = PYTHON_ESCAPES[escaped];
      if (simple !== undefined) {
        text += simple;
        position += 2;
        continue;
      }
      const width = escaped === 'x' ? 2 : escaped === 'u' ? 4 : escaped === 'U' ? 8 : 0;
      if (width > 0) {
        const hex = line.slice(position + 2, position + 2 + width);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== width) return undefined;
        text += String.fromCodePoint(Number.parseInt(hex, 16));
        position += 2 + width;
        continue;
      }
      const octal = /^[0-7]{1,3}/.exec(line.slice(position + 1));
      if (octal) {
        text += String.fromCodePoint(Number.parseInt(octal[0], 8));
        position += 1 + octal[0].length;
        continue;
      }
      text += `\\${escaped}`;
      position += 2;
    }
    return undefined;
  };
  skipSpaces();
  let value: string | string[] | undefined;
  if (line[position] === '[') {
    position++;
    const items: string[] = [];
    skipSpaces();
    while (line[position] !== ']') {
      const item = readString();
      if (item === undefined) return undefined;
      items.push(item);
      skipSpaces();
      if (line[position] === ',') {
        position++;
        skipSpaces();
      } else if (line[position] !== ']') return undefined;
    }
    position++;
    value = items;
  } else {
    value = readString();
  }
  skipSpaces();
  return position === line.length ? value : undefined;
}

const PYTHON_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  n: '\n',
  r: '\r',
  t: '\t',
  a: '\u0007',
  b: '\b',
  f: '\f',
  v: '\v',
  '\n': '',
};

/**
 * Terminal captures carry ANSI escape sequences (colours, cursor moves, bracketed paste) and carriage returns that
 * redraw a line; what a reader saw is the text without the sequences and, per line, what followed the last `\r`.
 */
function stripAnsi(text: string): string {
  return text
    .replace(ANSI_SEQUENCE, '')
    .replace(/\r+\n/g, '\n')
    .split('\n')
    .map((line) => (line.includes('\r') ? line.slice(line.lastIndexOf('\r') + 1) : line))
    .join('\n');
}

// CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), DCS/SOS/PM/APC strings, and two-character escapes.
const ANSI_SEQUENCE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal control sequences is the point.
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_]|\x1b[()][0-9A-Za-z]/g;

/** Reads a text file without its ANSI sequences; a missing file is not an error, an unreadable one is a reject. */
async function readText(file: string, position: string): Promise<TextRead> {
  try {
    return { kind: 'read', file, position, text: stripAnsi(await readFile(file, 'utf8')).trimEnd() };
  } catch (error) {
    if (isMissing(error)) return { kind: 'missing' };
    return {
      kind: 'invalid',
      reject: rejectItem(FORMAT, file, position, `cannot read the file: ${(error as Error).message}`, ''),
    };
  }
}

/** Reads and parses a JSON file; a missing file is not an error, an unreadable or invalid one becomes a reject. */
async function readJson(file: string, position: string): Promise<JsonRead> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if (isMissing(error)) return { kind: 'missing' };
    return {
      kind: 'invalid',
      reject: rejectItem(FORMAT, file, position, `cannot read the file: ${(error as Error).message}`, ''),
    };
  }
  const decoded = decodeUtf8(bytes);
  if (!('text' in decoded)) {
    const reason = `${decoded.reason} (${decoded.position})`;
    return { kind: 'invalid', reject: rejectItem(FORMAT, file, position, reason, bytes.toString('utf8')) };
  }
  const text = decoded.text;
  try {
    return { kind: 'parsed', value: JSON.parse(text) };
  } catch (error) {
    const message = (error as Error).message;
    const truncated = /end of JSON input|Unterminated string/i.test(message);
    const reason = truncated
      ? `truncated JSON (the file ends mid-document; copy it again or re-run the trial): ${message}`
      : `invalid JSON: ${message}`;
    return { kind: 'invalid', reject: rejectItem(FORMAT, file, position, reason, text) };
  }
}

function reject(file: string, position: string, reason: string, value: unknown): ParseItem {
  return rejectItem(FORMAT, file, position, reason, stringifyRaw(value));
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function listEntries(directory: string): Promise<Set<string>> {
  return new Set(await readdir(directory).catch(() => []));
}

/** Subfolders in name order, so that a re-import reads them in the same order. */
async function listDirectories(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort()
    .map((name) => join(directory, name));
}

/** A run folder's name as an id: some real folders end in a space. */
function runNameOf(directory: string): string {
  return basename(directory).trim() || directory;
}

function ancestors(directory: string): string[] {
  const names: string[] = [];
  let current = directory;
  for (let level = 0; level <= ANCESTOR_LEVELS; level++) {
    names.push(basename(current));
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return names;
}

function isoTime(value: string | null | undefined): string | undefined {
  return value && IsoTime.safeParse(value).success ? value : undefined;
}

/** Drops undefined fields, so that stored events hold only what the source said. */
function compact<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}
