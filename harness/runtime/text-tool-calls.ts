import type { ModelToolCall } from '../contracts.js';

/**
 * The fallback for models that write tool calls as text instead of using the API's tool calling: JSON objects
 * `{"name": …, "arguments": {…}}` inside ```json fences or `<tool_call>` blocks (the Hermes/Qwen form). A block
 * that is clearly meant as a call but cannot be parsed becomes a call without `arguments` (its raw text in
 * `argumentsText`), so the runtime can tell the model what was wrong instead of ignoring it.
 */

const TOOL_CALL_BLOCK = /<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g;
const FENCED_BLOCK = /```[ \t]*(?:json|tool_call|tool)?[ \t]*\n([\s\S]*?)```/g;
const NAME_FIELD = /"name"\s*:\s*"([^"]+)"/;

/** Tool calls found in a reply's text, in order. `toolNames` decides which fenced JSON counts as a call. */
export function parseTextToolCalls(content: string, toolNames: readonly string[]): ModelToolCall[] {
  const calls: ModelToolCall[] = [];
  const add = (name: string, parsed: Record<string, unknown> | undefined, raw: string) => {
    const id = `text-${calls.length + 1}`;
    calls.push(parsed ? { id, name, arguments: parsed } : { id, name, argumentsText: raw });
  };
  const tagged = [...content.matchAll(TOOL_CALL_BLOCK)];
  if (tagged.length > 0) {
    for (const match of tagged) {
      const raw = stripFence((match[1] ?? '').trim());
      for (const item of parseCallObjects(raw)) add(item.name, item.arguments, raw);
    }
    return calls;
  }
  for (const match of content.matchAll(FENCED_BLOCK)) {
    const raw = (match[1] ?? '').trim();
    const objects = parseCallObjects(raw);
    for (const item of objects) if (toolNames.includes(item.name)) add(item.name, item.arguments, raw);
  }
  return calls;
}

interface CallObject {
  name: string;
  arguments: Record<string, unknown> | undefined;
}

/** The call objects in one block: an object, an array of objects, or unparsable text with a recognisable name. */
function parseCallObjects(raw: string): CallObject[] {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    const name = NAME_FIELD.exec(raw)?.[1];
    return [{ name: name ?? '(unparsed)', arguments: undefined }];
  }
  const items = Array.isArray(value) ? value : [value];
  return items.flatMap((item): CallObject[] => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return [];
    const record = item as Record<string, unknown>;
    const call = (record.function && typeof record.function === 'object' ? record.function : record) as Record<
      string,
      unknown
    >;
    const name = call.name ?? call.tool;
    if (typeof name !== 'string') return [];
    let args = call.arguments ?? call.parameters ?? call.args ?? {};
    if (typeof args === 'string') {
      try {
        args = JSON.parse(args);
      } catch {
        return [{ name, arguments: undefined }];
      }
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return [{ name, arguments: undefined }];
    return [{ name, arguments: args as Record<string, unknown> }];
  });
}

function stripFence(text: string): string {
  const fenced = /^```[a-z_]*\s*\n?([\s\S]*?)```$/.exec(text);
  return fenced ? (fenced[1] ?? '').trim() : text;
}
