import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endsWithToolCall, parseLastToolCall } from '../../src/tools/tool-call.js';

test('parses the last tool call of a turn', () => {
  const text = 'first <tool_call>\n{"name": "a", "arguments": {}}\n</tool_call> then <tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.2, 0.3, 0.4], "target_image": 1}}\n</tool_call>';
  const r = parseLastToolCall(text);
  assert.ok(r?.ok);
  assert.equal(r.call.name, 'crop_image_normalized');
  assert.deepEqual(r.call.arguments, { bbox_2d: [0.1, 0.2, 0.3, 0.4], target_image: 1 });
  assert.ok(endsWithToolCall(text + '\n'));
  assert.equal(endsWithToolCall('no call here'), false);
});

test('bad JSON and wrong shapes are reported, not thrown', () => {
  const bad = parseLastToolCall('<tool_call>{"name": "x", </tool_call>');
  assert.ok(bad && !bad.ok);
  assert.match(bad.error, /^Invalid tool call: the content of <tool_call><\/tool_call> is not valid JSON/);
  const shape = parseLastToolCall('<tool_call>{"name": 3}</tool_call>');
  assert.ok(shape && !shape.ok);
  assert.equal(shape.error, 'Invalid tool call: expected {"name": <function-name>, "arguments": <args-json-object>}.');
  assert.equal(parseLastToolCall('plain text'), undefined);
});
