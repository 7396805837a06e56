import type { Response } from 'express';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

/** An error with an OpenAI-shaped body: {"error": {"message", "type", "param", "code"}}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly param: string | null = null,
    readonly type: ErrorType = status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }

  toJSON() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function sendError(res: Response, err: ApiError): void {
  // Backpressure: tell well-behaved clients (the OpenAI SDKs honour it) when to come back.
  if (err.status === 429) res.setHeader('Retry-After', '1');
  res.status(err.status).json(err.toJSON());
}
