import type { RouteRegistrar } from './routes.js';

/** `POST /v1/cli`: a command of the local CLI, run inside the server that owns the database. */
export const registerCliRoute: RouteRegistrar = () => {};
