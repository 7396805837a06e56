/** A parsed `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block. */
export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
  /** The raw JSON text between the tags. */
  raw: string;
}

export type ParsedToolCall = { ok: true; call: ToolCall } | { ok: false; raw: string; error: string };

const TOOL_CALL_RE = /<tool_call>([\s\S]*?)<\/tool_call>/g;

/** Parses the last tool call in `text` (the reference executes only the last one of a turn). */
export function parseLastToolCall(text: string): ParsedToolCall | undefined {
  const matches = [...text.matchAll(TOOL_CALL_RE)];
  const last = matches.at(-1);
  if (!last) return undefined;
  const raw = last[1]!.trim();
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    return { ok: false, raw, error: `Invalid tool call: the content of <tool_call></tool_call> is not valid JSON (${(e as Error).message}).` };
  }
  const v = value as { name?: unknown; arguments?: unknown };
  if (typeof value !== 'object' || value === null || typeof v.name !== 'string' || typeof v.arguments !== 'object' || v.arguments === null || Array.isArray(v.arguments)) {
    return { ok: false, raw, error: 'Invalid tool call: expected {"name": <function-name>, "arguments": <args-json-object>}.' };
  }
  return { ok: true, call: { name: v.name, arguments: v.arguments as Record<string, unknown>, raw } };
}

/** True when a text ends with a complete tool call (ignoring trailing whitespace). */
export function endsWithToolCall(text: string): boolean {
  return /<\/tool_call>\s*$/.test(text) && text.lastIndexOf('<tool_call>') >= 0;
}
