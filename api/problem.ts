import { InputError, SelfharnessError, SystemError, UserError } from '../core/index.js';

/** The HTTP statuses this API answers with; they exist in `api/` only. */
export type ProblemStatus = 400 | 401 | 404 | 408 | 413 | 415 | 500 | 504;

/**
 * An RFC 9457 problem document: what every failed request gets back, with `application/problem+json`. `detail` says
 * what was wrong and what to do, like the command line's error messages.
 */
export interface Problem {
  type: string;
  title: string;
  status: ProblemStatus;
  detail: string;
}

/** An error raised inside a route that already knows its HTTP status; `toProblem` turns it into the response body. */
export class HttpProblem extends Error {
  constructor(
    readonly status: ProblemStatus,
    readonly title: string,
    detail: string,
  ) {
    super(detail);
    this.name = new.target.name;
  }
}

const TITLES: Record<ProblemStatus, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  504: 'Gateway Timeout',
};

/**
 * Maps any error to a problem: the errors of our modules by who is at fault (the caller's input or request: 400; the
 * system: 500), `HttpProblem` as it says, anything else as 500 with its first line only (no stack traces leave).
 */
export function toProblem(error: unknown): Problem {
  if (error instanceof HttpProblem) return problem(error.status, error.message, error.title);
  if (error instanceof UserError || error instanceof InputError) return problem(400, error.message);
  if (error instanceof SystemError || error instanceof SelfharnessError) return problem(500, error.message);
  const message = error instanceof Error ? error.message : String(error);
  return problem(500, message.split('\n')[0] ?? message);
}

export function problem(status: ProblemStatus, detail: string, title = TITLES[status]): Problem {
  return { type: 'about:blank', title, status, detail };
}
