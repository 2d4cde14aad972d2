import { createHash } from 'node:crypto';
import { type EventLog, type HarnessVersionCreated, UserError } from '../core/index.js';
import { canonicalJson } from './canonical-json.js';
import { defaultHarnessSpec, type HarnessSpec, parseHarnessSpec } from './spec.js';

/**
 * Harness versions are content-addressed: the id is a hash of the canonical spec, so the same harness always has the
 * same id, wherever and whenever it is registered. Versions live in the log as `harness-version-create` events in the
 * stream `harness:<versionId>`; registering a known spec again adds nothing.
 */

/** Hex characters of the sha256 kept in a version id: 48 bits, ample for the versions one project makes. */
export { canonicalJson };

export const VERSION_ID_LENGTH = 12;

export interface HarnessVersion {
  readonly versionId: string;
  readonly parentId?: string;
  readonly description?: string;
  readonly spec: HarnessSpec;
  /** When it was registered (ISO 8601), from the log. */
  readonly createdAt?: string;
}

/** The version id of a spec. The spec is validated first, so defaults filled in or left out give the same id. */
export function computeVersionId(spec: unknown): string {
  const parsed = parseHarnessSpec(spec);
  return createHash('sha256').update(canonicalJson(parsed)).digest('hex').slice(0, VERSION_ID_LENGTH);
}

/** The event that records a version; its id comes from the version, so a second registration is a duplicate. */
export function versionEvent(
  spec: HarnessSpec,
  options: { parentId?: string; description?: string; time?: string } = {},
): HarnessVersionCreated {
  const versionId = computeVersionId(spec);
  return {
    id: `harness-version:${versionId}`,
    runId: `harness:${versionId}`,
    type: 'harness-version-create',
    time: options.time ?? new Date().toISOString(),
    source: { format: 'selfharness' },
    data: {
      versionId,
      ...(options.parentId ? { parentId: options.parentId } : {}),
      ...(options.description ? { description: options.description } : {}),
      spec: JSON.parse(JSON.stringify(spec)) as Record<string, unknown>,
    },
  };
}

/**
 * Stores a version (validating the spec and the parent first) and returns it, with `created: false` when the log
 * held it already (then the stored parent and description are kept).
 */
export async function registerVersion(
  log: EventLog,
  spec: unknown,
  options: { parentId?: string; description?: string } = {},
): Promise<{ version: HarnessVersion; created: boolean }> {
  const parsed = parseHarnessSpec(spec);
  if (options.parentId !== undefined && !(await findVersion(log, options.parentId)))
    throw new UserError(
      `Unknown parent harness version ${options.parentId}: list versions with \`selfharness harness log\``,
    );
  const event = versionEvent(parsed, options);
  const known = await findVersion(log, event.data.versionId);
  if (known) return { version: known, created: false };
  const result = await log.appendEvents([event]);
  const stored = await findVersion(log, event.data.versionId);
  if (!stored) throw new Error(`harness version ${event.data.versionId} was appended but cannot be read back`);
  return { version: stored, created: result.appended > 0 };
}

/** Registers the built-in default harness when the log does not hold it yet. */
export async function ensureDefaultVersion(log: EventLog): Promise<HarnessVersion> {
  return (await registerVersion(log, defaultHarnessSpec, { description: 'the built-in default harness' })).version;
}

/** The id the built-in default harness has. */
export function defaultVersionId(): string {
  return computeVersionId(defaultHarnessSpec);
}

const LIST_VERSIONS = `
SELECT data->>'versionId' AS version_id, data->>'parentId' AS parent_id, data->>'description' AS description,
       CAST(data->'spec' AS VARCHAR) AS spec, coalesce(time, recorded_at) AS created_at
FROM events
WHERE type = 'harness-version-create'
ORDER BY seq`;

const FIND_BY_PREFIX = `
SELECT data->>'versionId' AS version_id, data->>'parentId' AS parent_id, data->>'description' AS description,
       CAST(data->'spec' AS VARCHAR) AS spec, coalesce(time, recorded_at) AS created_at
FROM events
WHERE type = 'harness-version-create' AND starts_with(data->>'versionId', $1)
ORDER BY seq`;

interface VersionRow extends Record<string, unknown> {
  version_id: string;
  parent_id: string | null;
  description: string | null;
  spec: string;
  created_at: unknown;
}

function toVersion(row: VersionRow): HarnessVersion {
  return {
    versionId: row.version_id,
    ...(row.parent_id ? { parentId: row.parent_id } : {}),
    ...(row.description ? { description: row.description } : {}),
    spec: parseHarnessSpec(JSON.parse(row.spec), `stored spec of harness version ${row.version_id}`),
    ...(row.created_at instanceof Date ? { createdAt: row.created_at.toISOString() } : {}),
  };
}

/** Every registered version, oldest first. */
export async function listVersions(log: EventLog): Promise<HarnessVersion[]> {
  return (await log.query<VersionRow>(LIST_VERSIONS)).map(toVersion);
}

async function findVersion(log: EventLog, versionId: string): Promise<HarnessVersion | undefined> {
  const rows = await log.query<VersionRow>(FIND_BY_PREFIX, [versionId]);
  const row = rows.find((candidate) => candidate.version_id === versionId);
  return row ? toVersion(row) : undefined;
}

/**
 * Finds a version by `default`, its full id or a unique prefix of it. `default` registers the built-in harness on
 * first use unless `readOnly` (then it is returned without being stored).
 */
export async function resolveVersion(
  log: EventLog,
  reference: string,
  options: { readOnly?: boolean } = {},
): Promise<HarnessVersion> {
  if (reference === 'default') {
    if (options.readOnly)
      return (
        (await findVersion(log, defaultVersionId())) ?? {
          versionId: defaultVersionId(),
          description: 'the built-in default harness',
          spec: defaultHarnessSpec,
        }
      );
    return ensureDefaultVersion(log);
  }
  if (!/^[0-9a-f]{1,64}$/.test(reference))
    throw new UserError(
      `Harness version ${JSON.stringify(reference)} is not a version id: give \`default\` or a hex id prefix from \`selfharness harness log\``,
    );
  const rows = await log.query<VersionRow>(FIND_BY_PREFIX, [reference]);
  const exact = rows.find((row) => row.version_id === reference);
  if (exact) return toVersion(exact);
  if (rows.length === 0)
    throw new UserError(
      reference === defaultVersionId()
        ? `Harness version ${reference} (the default) is not registered yet: use \`default\`, which registers it`
        : `Unknown harness version ${reference}: list versions with \`selfharness harness log\``,
    );
  if (rows.length > 1)
    throw new UserError(
      `Harness version prefix ${reference} is ambiguous: it matches ${rows.map((row) => row.version_id).join(', ')}; give more characters`,
    );
  return toVersion(rows[0]!);
}
