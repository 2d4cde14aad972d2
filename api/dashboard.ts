import type { Hono } from 'hono';

/** The dashboard's page and assets (no data: every number comes from the API, with the API's auth). */
export function registerDashboard(_app: Hono): void {}
