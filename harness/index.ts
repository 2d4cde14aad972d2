export { type CreateAgentOptions, createAgent } from './agent.js';
export * from './contracts.js';
