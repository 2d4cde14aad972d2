export { type ActionPurpose, type SimAction, type SimObservation, SimPolicy, type SimTask } from './policy.js';
export {
  findSimProfile,
  SIM_MAX_TURNS,
  SIM_PRICE_PER_MILLION_TOKENS,
  type SimProfile,
  simProfiles,
} from './profiles.js';
export { createRandom, type Random } from './random.js';
export {
  type InstructionKind,
  type MessageSignals,
  readInstructions,
  readMessageSignals,
  readToolResult,
  type ToolResultReading,
} from './signals.js';
export { createSimModelFactory, SimModel } from './sim-model.js';
export { type SolutionStep, splitSolutionSteps } from './solution-steps.js';
