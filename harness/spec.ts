import { z } from 'zod';
import { describeSchemaError, InputError } from '../core/index.js';

/**
 * The harness as data: everything the runtime does around a model that an edit may change (instructions, tools,
 * middleware, declarative rules, budgets, sub-agents) is a field of this spec. The spec is plain JSON, validated once
 * at each boundary (a file, an event, a patch result), and versioned by the hash of its canonical form.
 */

/** Longest pattern a rule may hold: short patterns keep matching cheap and reviewable. */
export const MAX_PATTERN_LENGTH = 200;

/**
 * A regular expression a rule matches with. It must compile, stay short, and avoid nested quantifiers such as `(a+)+`,
 * which can take exponential time; the runtime also matches only the last part of long outputs.
 */
const Pattern = z
  .string()
  .min(1)
  .max(MAX_PATTERN_LENGTH)
  .superRefine((pattern, context) => {
    try {
      new RegExp(pattern);
    } catch (error) {
      context.addIssue({ code: 'custom', message: `not a valid regular expression: ${(error as Error).message}` });
      return;
    }
    if (/\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]/.test(pattern)) {
      context.addIssue({
        code: 'custom',
        message: 'nested quantifiers such as (a+)+ can take exponential time; rewrite without repeating a repeat',
      });
    }
  });

const Message = z.string().min(1).max(2000);

export const InstructionSections = z.strictObject({
  /** Who the agent is and how it works. */
  system: z.string().max(8000),
  /** What to do first in a fresh workspace (look around, check tools). */
  bootstrap: z.string().max(8000).default(''),
  /** How to carry out the work (commands, files, state). */
  execution: z.string().max(8000).default(''),
  /** How to check the result before finishing. */
  verification: z.string().max(8000).default(''),
  /** What to do when something fails. */
  recovery: z.string().max(8000).default(''),
});
export type InstructionSections = z.infer<typeof InstructionSections>;

export const toolNames = ['shell', 'read_file', 'write_file', 'edit_file', 'list_directory', 'finish'] as const;
export const ToolName = z.enum(toolNames);
export type ToolName = z.infer<typeof ToolName>;

const ToolSettings = z.strictObject({
  enabled: z.boolean().default(true),
  description: z.string().min(1).max(2000),
  /** For `read_file` and `write_file`: the largest file content handled, in bytes. */
  maxBytes: z.number().int().positive().max(10_000_000).optional(),
  /** For `list_directory`: the most entries listed. */
  maxEntries: z.number().int().positive().max(10_000).optional(),
});
export type ToolSettings = z.infer<typeof ToolSettings>;

export const ToolSet = z
  .strictObject({
    shell: ToolSettings,
    read_file: ToolSettings,
    write_file: ToolSettings,
    edit_file: ToolSettings,
    list_directory: ToolSettings,
    finish: ToolSettings,
  })
  .refine((tools) => tools.finish.enabled, { message: 'the finish tool cannot be disabled', path: ['finish'] });
export type ToolSet = z.infer<typeof ToolSet>;

const Action = z.enum(['warn', 'block']);

/** The built-in middleware, each with its own parameters. Their behaviour is documented in `harness/middleware/`. */
export const MiddlewareEntry = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('persistent-shell') }),
  z.strictObject({
    name: z.literal('loop-breaker'),
    /** The same tool call with the same arguments this many times triggers the action. */
    maxRepeats: z.number().int().min(2).max(50).default(3),
    action: Action.default('block'),
  }),
  z.strictObject({
    name: z.literal('failed-command-guard'),
    /** A shell command that failed this many times is blocked the next time. */
    maxFailures: z.number().int().min(1).max(50).default(2),
  }),
  z.strictObject({
    name: z.literal('artifact-check'),
    /** Also require files the instruction names in backticks (besides the task's declared artifacts). */
    fromInstruction: z.boolean().default(true),
  }),
  z.strictObject({ name: z.literal('dependency-precheck'), action: Action.default('warn') }),
  z.strictObject({
    name: z.literal('exploration-nudge'),
    /** Read-only actions in a row (no file written, no command that changes anything) before a nudge. */
    maxReadOnlyActions: z.number().int().min(1).max(200).default(8),
  }),
  z.strictObject({ name: z.literal('error-recovery-hints') }),
  z.strictObject({
    name: z.literal('output-normalizer'),
    stripAnsi: z.boolean().default(true),
    collapseProgress: z.boolean().default(true),
    /** Outputs longer than this keep their head and tail, with the middle cut. */
    maxChars: z.number().int().min(200).max(1_000_000).default(6000),
  }),
]);
export type MiddlewareEntry = z.infer<typeof MiddlewareEntry>;
export type MiddlewareName = MiddlewareEntry['name'];
export const middlewareNames: readonly MiddlewareName[] = MiddlewareEntry.options.map(
  (option) => option.shape.name.value,
);

/** What a rule watches: a tool call before it runs, a tool result, or an attempt to finish. */
export const RuleTrigger = z.strictObject({
  on: z.enum(['tool-call', 'tool-result', 'finish']),
  /** Matches the tool name. */
  tool: Pattern.optional(),
  /** Matches the shell command (for other tools: the arguments as JSON). */
  command: Pattern.optional(),
  /** Matches the tool's output (only `tool-result`). */
  output: Pattern.optional(),
  /** Which exit codes count (only `tool-result`). */
  exitCode: z.enum(['zero', 'nonzero', 'any']).default('any'),
  /** The rule acts from the count-th matching event on. */
  count: z.number().int().min(1).max(1000).default(1),
  /** The rule acts at most this often in a run. */
  maxFirings: z.number().int().min(1).max(1000).optional(),
});
export type RuleTrigger = z.infer<typeof RuleTrigger>;

export const RuleAction = z.discriminatedUnion('type', [
  /** A message the model reads with the tool result. */
  z.strictObject({ type: z.literal('inject'), message: Message }),
  /** The call does not run; the model reads the reason instead. */
  z.strictObject({ type: z.literal('block'), reason: Message }),
  /** Runs a command in the workspace; on a tool event its output reaches the model, on finish a failure refuses it. */
  z.strictObject({
    type: z.literal('check'),
    command: z.string().min(1).max(1000),
    message: Message.optional(),
  }),
  /** Refuses the finish call with a message. */
  z.strictObject({ type: z.literal('refuse-finish'), message: Message }),
]);
export type RuleAction = z.infer<typeof RuleAction>;

export const Rule = z
  .strictObject({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'use lower-case letters, digits and dashes (at most 64)')
      .describe('a stable name, shown to the model and in logs'),
    description: z.string().max(500).optional(),
    trigger: RuleTrigger,
    action: RuleAction,
  })
  .superRefine((rule, context) => {
    const { on } = rule.trigger;
    const type = rule.action.type;
    const allowed: Record<typeof on, readonly string[]> = {
      'tool-call': ['inject', 'block', 'check'],
      'tool-result': ['inject', 'check'],
      finish: ['refuse-finish', 'check'],
    };
    if (!allowed[on].includes(type)) {
      context.addIssue({
        code: 'custom',
        path: ['action', 'type'],
        message: `action ${type} cannot follow a ${on} trigger (allowed: ${allowed[on].join(', ')})`,
      });
    }
    if (on !== 'tool-result' && (rule.trigger.output !== undefined || rule.trigger.exitCode !== 'any')) {
      context.addIssue({
        code: 'custom',
        path: ['trigger'],
        message: 'output and exitCode only apply to a tool-result trigger',
      });
    }
    if (on === 'finish' && (rule.trigger.tool !== undefined || rule.trigger.command !== undefined)) {
      context.addIssue({ code: 'custom', path: ['trigger'], message: 'a finish trigger takes no tool or command' });
    }
  });
export type Rule = z.infer<typeof Rule>;

export const Budgets = z.strictObject({
  /** Model calls per run. */
  maxTurns: z.number().int().min(1).max(10_000),
  /** Prompt plus completion tokens per run. */
  maxTokens: z.number().int().min(1000).max(1_000_000_000),
  /** Wall time per run, seconds (the task's own limit applies as well). */
  wallTimeSec: z.number().int().min(1).max(86_400),
  /** Time limit of one shell command, seconds. */
  commandTimeoutSec: z.number().int().min(1).max(3600),
  /** A tool result longer than this reaches the model cut, with a note saying so. */
  maxOutputChars: z.number().int().min(200).max(1_000_000),
  /** Finish refusals (by middleware and rules) per run; after that a finish is accepted. */
  maxFinishRefusals: z.number().int().min(0).max(50).default(3),
  /** Replies in a row without a tool call before the run stops. */
  maxReplyWithoutToolCall: z.number().int().min(1).max(20).default(3),
});
export type Budgets = z.infer<typeof Budgets>;

/** A sub-agent the main agent may delegate a piece of work to through the `delegate` tool. */
export const SubAgent = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'use lower-case letters, digits and dashes (at most 32)'),
  description: z.string().min(1).max(1000),
  instructions: z.string().min(1).max(8000),
  tools: z
    .array(ToolName)
    .min(1)
    .refine((tools) => new Set(tools).size === tools.length, 'tools are listed once each'),
  maxTurns: z.number().int().min(1).max(200).default(10),
});
export type SubAgent = z.infer<typeof SubAgent>;

export const HarnessSpec = z
  .strictObject({
    schemaVersion: z.literal(1),
    instructions: InstructionSections,
    tools: ToolSet,
    middleware: z.array(MiddlewareEntry).max(20),
    rules: z.array(Rule).max(50).default([]),
    budgets: Budgets,
    subagents: z.array(SubAgent).max(8).default([]),
  })
  .superRefine((spec, context) => {
    const seen = new Set<string>();
    spec.middleware.forEach((entry, index) => {
      if (seen.has(entry.name))
        context.addIssue({
          code: 'custom',
          path: ['middleware', index, 'name'],
          message: `${entry.name} is listed twice`,
        });
      seen.add(entry.name);
    });
    const ruleIds = new Set<string>();
    spec.rules.forEach((rule, index) => {
      if (ruleIds.has(rule.id))
        context.addIssue({ code: 'custom', path: ['rules', index, 'id'], message: `rule id ${rule.id} is used twice` });
      ruleIds.add(rule.id);
    });
    const names = new Set<string>();
    spec.subagents.forEach((agent, index) => {
      if (names.has(agent.name))
        context.addIssue({
          code: 'custom',
          path: ['subagents', index, 'name'],
          message: `${agent.name} is used twice`,
        });
      names.add(agent.name);
      agent.tools.forEach((tool, toolIndex) => {
        if (!spec.tools[tool].enabled)
          context.addIssue({
            code: 'custom',
            path: ['subagents', index, 'tools', toolIndex],
            message: `${tool} is disabled in the tool set`,
          });
      });
    });
  });
export type HarnessSpec = z.infer<typeof HarnessSpec>;

/**
 * The baseline harness: a short prompt, shell and file tools, no optional middleware, as in the paper's starting
 * point. Every improvement is measured against it.
 */
export const defaultHarnessSpec: HarnessSpec = HarnessSpec.parse({
  schemaVersion: 1,
  instructions: {
    system:
      'You are an autonomous agent solving a task in a Linux terminal. The workspace is your working directory. ' +
      'Use the tools to inspect files, run commands and write results. Call finish when the task is done.',
  },
  tools: {
    shell: {
      description:
        'Run a bash command in the workspace and return its output and exit code. Each call starts a new shell.',
    },
    read_file: { description: 'Read a text file in the workspace.', maxBytes: 100_000 },
    write_file: {
      description: 'Write a text file in the workspace, creating parent folders; replaces any existing content.',
      maxBytes: 1_000_000,
    },
    edit_file: {
      description: 'Replace one exact occurrence of old_text with new_text in a file in the workspace.',
    },
    list_directory: { description: 'List the entries of a folder in the workspace.', maxEntries: 500 },
    finish: { description: 'Declare the task done, with a short summary of what was done.' },
  },
  middleware: [],
  budgets: { maxTurns: 50, maxTokens: 2_000_000, wallTimeSec: 900, commandTimeoutSec: 120, maxOutputChars: 10_000 },
});

/** Checks a spec read from a file, an event or a patch; the error names each bad field and says what to do. */
export function parseHarnessSpec(value: unknown, origin = 'harness spec'): HarnessSpec {
  const parsed = HarnessSpec.safeParse(value);
  if (!parsed.success) {
    throw new InputError(`Invalid ${origin}: ${describeSpecError(parsed.error)}. Fix the fields named and try again.`);
  }
  return parsed.data;
}

/** Like `describeSchemaError`, with paths written as JSON pointers, which is how patches name fields. */
export function describeSpecError(error: z.ZodError): string {
  if (error.issues.length === 0) return describeSchemaError(error);
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? `/${issue.path.join('/')}` : '(spec)'}: ${issue.message}`)
    .join('; ');
}
