import type { Middleware } from '../runtime/middleware.js';
import type { HarnessSpec, MiddlewareEntry } from '../spec.js';
import { artifactCheck } from './artifact-check.js';
import { dependencyPrecheck } from './dependency-precheck.js';
import { errorRecoveryHints } from './error-recovery-hints.js';
import { explorationNudge } from './exploration-nudge.js';
import { failedCommandGuard } from './failed-command-guard.js';
import { loopBreaker } from './loop-breaker.js';
import { outputNormalizer } from './output-normalizer.js';
import { persistentShell } from './persistent-shell.js';
import { declarativeRules } from './rules.js';

function build(entry: MiddlewareEntry): Middleware {
  switch (entry.name) {
    case 'persistent-shell':
      return persistentShell();
    case 'loop-breaker':
      return loopBreaker(entry);
    case 'failed-command-guard':
      return failedCommandGuard(entry);
    case 'artifact-check':
      return artifactCheck(entry);
    case 'dependency-precheck':
      return dependencyPrecheck(entry);
    case 'exploration-nudge':
      return explorationNudge(entry);
    case 'error-recovery-hints':
      return errorRecoveryHints();
    case 'output-normalizer':
      return outputNormalizer(entry);
  }
}

/** Middleware that must run before the others: the shell they all use, and the output the others read. */
const FIRST: readonly MiddlewareEntry['name'][] = ['persistent-shell', 'output-normalizer'];

/**
 * Fresh middleware for one trial (they keep per-run counts). Order: the persistent shell and the output normaliser
 * first, then the rest as the spec lists them, then the declarative rules, which thus see normalised output and the
 * notes of the built-in middleware.
 */
export function createMiddleware(spec: HarnessSpec): Middleware[] {
  const ordered = [
    ...spec.middleware.filter((entry) => FIRST.includes(entry.name)),
    ...spec.middleware.filter((entry) => !FIRST.includes(entry.name)),
  ];
  const middleware = ordered.map(build);
  if (spec.rules.length > 0) middleware.push(declarativeRules(spec.rules));
  return middleware;
}
