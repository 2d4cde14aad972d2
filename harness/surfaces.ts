import { applyPatch, PatchError, type PatchOperation, parsePatch, parsePointer } from './json-patch.js';
import { describeSpecError, HarnessSpec } from './spec.js';

/**
 * The parts of a harness a proposer may change. Everything else (the tool set, whether a tool is enabled, the schema
 * version) stays as a person set it, so an automated edit can only touch what was declared editable. A surface is a
 * JSON Pointer pattern; `*` stands for one segment, and an edit may change the surface itself or anything beneath it.
 */
export interface EditableSurface {
  readonly path: string;
  readonly description: string;
}

export const editableSurfaces: readonly EditableSurface[] = [
  {
    path: '/instructions/*',
    description: 'one instruction section: system, bootstrap, execution, verification, recovery',
  },
  { path: '/middleware', description: 'the built-in middleware list and their parameters' },
  { path: '/rules', description: 'declarative rules: trigger (tool call, tool result, finish) → action' },
  { path: '/budgets/*', description: 'one runtime budget: turns, tokens, wall time, command timeout, output size' },
  { path: '/tools/*/description', description: "a tool's description as the model reads it" },
  { path: '/subagents', description: 'sub-agents the agent may delegate to' },
];

export interface PatchCheck {
  readonly ok: boolean;
  /** One reason per rejected operation (or for the patch as a whole), naming the operation and the path. */
  readonly reasons: readonly string[];
}

/** Whether a JSON Pointer lies on or beneath a declared surface. */
export function isEditablePath(pointer: string, surfaces: readonly EditableSurface[] = editableSurfaces): boolean {
  let tokens: string[];
  try {
    tokens = parsePointer(pointer);
  } catch {
    return false;
  }
  return surfaces.some((surface) => {
    const pattern = parsePointer(surface.path);
    return (
      tokens.length >= pattern.length && pattern.every((segment, index) => segment === '*' || segment === tokens[index])
    );
  });
}

/**
 * Checks a patch against the declared surfaces without applying it: every operation that writes must target an
 * editable path (a `move` also removes its source, so the source must be editable too); `test` only reads.
 */
export function checkPatchSurfaces(
  patch: readonly PatchOperation[],
  surfaces: readonly EditableSurface[] = editableSurfaces,
): PatchCheck {
  const reasons: string[] = [];
  const allowed = surfaces.map((surface) => surface.path).join(', ');
  patch.forEach((operation, index) => {
    if (operation.op === 'test') return;
    if (!isEditablePath(operation.path, surfaces))
      reasons.push(
        `operation ${index} (${operation.op} ${operation.path}): not an editable surface (editable: ${allowed})`,
      );
    if (operation.op === 'move' && !isEditablePath(operation.from, surfaces))
      reasons.push(`operation ${index} (move from ${operation.from}): the source is not an editable surface`);
  });
  return { ok: reasons.length === 0, reasons };
}

export type PatchResult =
  | { readonly ok: true; readonly spec: HarnessSpec }
  | { readonly ok: false; readonly reasons: readonly string[] };

/**
 * Applies a proposed edit: the patch must be well formed, touch only editable surfaces, apply cleanly, and yield a
 * valid spec. Expected failures are returned with reasons (a proposer shows them or tries again), never thrown.
 */
export function applySpecPatch(
  spec: HarnessSpec,
  patch: unknown,
  surfaces: readonly EditableSurface[] = editableSurfaces,
): PatchResult {
  const parsed = parsePatch(patch);
  if ('error' in parsed) return { ok: false, reasons: [parsed.error] };
  if (parsed.operations.length === 0) return { ok: false, reasons: ['the patch is empty: it changes nothing'] };
  const check = checkPatchSurfaces(parsed.operations, surfaces);
  if (!check.ok) return { ok: false, reasons: check.reasons };
  let patched: unknown;
  try {
    patched = applyPatch(spec, parsed.operations);
  } catch (error) {
    if (error instanceof PatchError) return { ok: false, reasons: [error.message] };
    throw error;
  }
  const validated = HarnessSpec.safeParse(patched);
  if (!validated.success)
    return { ok: false, reasons: [`the patched spec is invalid: ${describeSpecError(validated.error)}`] };
  return { ok: true, spec: validated.data };
}
