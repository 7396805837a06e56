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

/** The reference implementation's guideline appended to the user turn when tools are offered. */
export const PIXEL_REASONING_GUIDELINE =
  '\n\nGuidelines: Understand the given visual information and the user query. Determine if it is beneficial to employ the given visual operations (tools). For a video, we can look closer by `select_frames`. For an image, we can look closer by `crop_image_normalized`. Reason with the visual information step by step, and put your final answer within \\boxed{}.';
