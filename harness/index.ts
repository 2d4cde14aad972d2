export { type CreateAgentOptions, createAgent, resolveModelFactory } from './agent.js';
export { canonicalJson } from './canonical-json.js';
export * from './contracts.js';
export {
  applyPatch,
  diffJson,
  formatPointer,
  isDeepEqual,
  PatchError,
  type PatchOperation,
  parsePatch,
  parsePointer,
  valueAt,
} from './json-patch.js';
export { instructionPaths } from './middleware/artifact-check.js';
export { createMiddleware } from './middleware/index.js';
export { commandPrograms } from './middleware/shell-words.js';
export { createOpenAiModel, type OpenAiModelOptions, openAiOptionsFromEnvironment } from './models/openai.js';
export { type RunHarnessOptions, renderOutcome, runHarness, type StopReason } from './runtime/loop.js';
export type {
  AgentSession,
  CommandRunner,
  Middleware,
  ToolDecision,
  ToolInvocation,
  ToolOutcome,
  ToolRecord,
} from './runtime/middleware.js';
export { buildSystemPrompt } from './runtime/prompt.js';
export { parseTextToolCalls } from './runtime/text-tool-calls.js';
export { resolveWorkspacePath, toolDefinitions } from './runtime/tools.js';
export {
  Budgets,
  defaultHarnessSpec,
  HarnessSpec,
  InstructionSections,
  MiddlewareEntry,
  middlewareNames,
  parseHarnessSpec,
  Rule,
  RuleAction,
  RuleTrigger,
  SubAgent,
  ToolName,
  toolNames,
} from './spec.js';
export {
  applySpecPatch,
  checkPatchSurfaces,
  type EditableSurface,
  editableSurfaces,
  isEditablePath,
  type PatchCheck,
  type PatchResult,
} from './surfaces.js';
export { createHarnessAgent } from './trial-agent.js';
export {
  computeVersionId,
  defaultVersionId,
  ensureDefaultVersion,
  type HarnessVersion,
  listVersions,
  registerVersion,
  resolveVersion,
  VERSION_ID_LENGTH,
  versionEvent,
} from './versions.js';
