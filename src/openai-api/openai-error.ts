/**
 * Errors of the OpenAI-compatible API, in OpenAI's own error shape, so that the official SDKs
 * raise their usual exceptions (`BadRequestError`, `NotFoundError`, `InternalServerError`…) with
 * the message and code below.
 */

/** `type` values OpenAI uses that this API answers with (`requests`: a request-rate limit, with code `rate_limit_exceeded`). */
export type OpenAiErrorType = 'invalid_request_error' | 'server_error' | 'requests';

/** Body of every error answer: `{"error": {message, type, param, code}}` (OpenAI's shape). */
export interface OpenAiErrorBody {
  error: {
    /** What was wrong and what is accepted. */
    message: string;
    type: OpenAiErrorType;
    /** The request field at fault (`model`, `file`, `response_format`…), or null. */
    param: string | null;
    /**
     * Machine-readable code: OpenAI's where one exists (`model_not_found`, `invalid_value`,
     * `unknown_parameter`), otherwise the gateway's code lower-cased (`audio_unreadable`,
     * `engine_rejected`).
     */
    code: string | null;
  };
}

/** An error to answer in OpenAI's shape; `headers` are set on the response with it. */
export class OpenAiError extends Error {
  constructor(
    /** HTTP status. */
    readonly status: number,
    message: string,
    readonly type: OpenAiErrorType = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'OpenAiError';
  }

  body(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}
