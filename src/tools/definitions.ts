/** The visual operations as the model sees them (OpenAI function-tool shape, rendered into the system turn). */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export type ToolName = 'crop_image_normalized' | 'select_frames';

export const CROP_TOOL: ToolDefinition = {
  type: 'function',
  function: {
    name: 'crop_image_normalized',
    description:
      'Zoom in on the image based on the bounding box coordinates. It is useful when the object or text in the image is too small to be seen.',
    parameters: {
      type: 'object',
      properties: {
        bbox_2d: {
          type: 'array',
          description: 'Coordinates [x1, y1, x2, y2] of the region to zoom in, normalized to [0, 1] (or absolute pixels of the target image).',
          items: { type: 'number' },
        },
        target_image: {
          type: 'number',
          description: 'The index of the image to crop, from 1 to the number of images so far. Choose 1 for the original image.',
        },
      },
      required: ['bbox_2d', 'target_image'],
    },
  },
};

export const SELECT_FRAMES_TOOL: ToolDefinition = {
  type: 'function',
  function: {
    name: 'select_frames',
    description: 'Select frames from a video to look at them closer.',
    parameters: {
      type: 'object',
      properties: {
        target_frames: {
          type: 'array',
          description: 'List of frame indices (1-based) to select from the video, no more than 8 frames in total.',
          items: { type: 'integer' },
        },
      },
      required: ['target_frames'],
    },
  },
};

export const ALL_TOOLS: Record<ToolName, ToolDefinition> = {
  crop_image_normalized: CROP_TOOL,
  select_frames: SELECT_FRAMES_TOOL,
};

/** The operations a request may use when it names none: frame selection only where there is a video. */
export function defaultTools(hasVideo: boolean): ToolName[] {
  return hasVideo ? ['select_frames', 'crop_image_normalized'] : ['crop_image_normalized'];
}

/** The reference implementation's guideline appended to the user turn when tools are offered. */
export const PIXEL_REASONING_GUIDELINE =
  '\n\nGuidelines: Understand the given visual information and the user query. Determine if it is beneficial to employ the given visual operations (tools). For a video, we can look closer by `select_frames`. For an image, we can look closer by `crop_image_normalized`. Reason with the visual information step by step, and put your final answer within \\boxed{}.';

/**
 * The Pixel-Reasoner reference's prompt (TIGER-AI-Lab/Pixel-Reasoner, curiosity_driven_rl:
 * experience_maker.py's tool classes, prompts_dataset.py's `vcot` trigger, Qwen-Agent's
 * NousFnCallPrompt), which its released policy was trained and evaluated with. Checkpoints imported
 * from Hugging Face are prompted with it; the project's own models keep the prompt above, which
 * they were trained with.
 */
export const REFERENCE_TOOLS = [
  {
    type: 'function',
    function: {
      name: 'crop_image_normalized',
      description: 'Zoom in on the image based on the bounding box coordinates. It is useful when the object or text in the image is too small to be seen.',
      parameters: {
        type: 'object',
        properties: {
          bbox_2d: {
            type: 'array',
            description: 'coordinates for bounding box of the area you want to zoom in. Values should be within [0.0,1.0].',
            items: { type: 'number' },
          },
          target_image: {
            type: 'number',
            description: 'The index of the image to crop. Index from 1 to the number of images. Choose 1 to operate on original image.',
          },
        },
        required: ['bbox_2d', 'target_image'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'select_frames',
      description: 'Select frames from a video.',
      parameters: {
        type: 'object',
        properties: {
          target_frames: {
            type: 'array',
            description: 'List of frame indices to select from the video (no more than 8 frames in total).',
            items: { type: 'integer', description: 'Frame index from 1 to 16.' },
          },
        },
        required: ['target_frames'],
      },
    },
  },
] as const;

/**
 * The reference's system turn: Qwen-Agent's function-calling block after the default system text.
 * Both tools are listed whatever the request (the reference always lists both; a frame selection on
 * an image gets its error turn).
 */
export function referenceSystemPrompt(systemText: string): string {
  return `${systemText}\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n`
    + `You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n${REFERENCE_TOOL_LINES}\n</tools>\n\n`
    + 'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n'
    + '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>';
}

/** The tools as the reference serialises them into the system turn (json.dumps, one a line): a constant. */
const REFERENCE_TOOL_LINES = REFERENCE_TOOLS.map((t) => pythonJsonDumps(t)).join('\n');

/**
 * The reference's `vcot` trigger as its data pipeline appends it to the question: the template's
 * leading "\n\n" plus the "\n\n" the dataset code adds (so four newlines), and `crop_image`, as written there.
 */
export const REFERENCE_GUIDELINE =
  '\n\n\n\nGuidelines: Understand the given visual information and the user query. Determine if it is beneficial to employ the given visual operations (tools). For a video, we can look closer by `select_frames`. For an image, we can look closer by `crop_image`. Reason with the visual information step by step, and put your final answer within \\boxed{}.';

/** Python's json.dumps with default separators (", " and ": ") and ensure_ascii=False, keys in insertion order. */
export function pythonJsonDumps(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pythonJsonDumps(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}
