import type { Hono } from 'hono';
import type { EventLog } from '../core/index.js';

/** What a group of routes gets from the app: the log, and the queue that gives requests their turn on it. */
export interface RouteContext {
  /** The log, opened for writing. */
  readonly log: EventLog;
  /** Runs `task` when the requests queued before it are done (the log's connection runs one statement at a time). */
  readonly exclusive: <T>(task: () => Promise<T>) => Promise<T>;
}

/** Adds a group of routes to the app. */
export type RouteRegistrar = (app: Hono, context: RouteContext) => void;
