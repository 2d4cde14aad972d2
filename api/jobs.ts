import type { RouteRegistrar } from './routes.js';

/** Improve jobs: `POST /v1/improve`, `GET /v1/jobs`, `GET /v1/jobs/:id`, `GET /v1/jobs/:id/events` (server-sent events). */
export const registerJobRoutes: RouteRegistrar = () => {};
