/**
 * Turns anything thrown while serving a request into the API's error answer
 * `{ error: CODE, message }`: our OtaErrors as they are, fastify's own errors (validation,
 * content type, body size) mapped onto our catalogue, and anything else as SERVER_INTERNAL
 * without leaking its detail.
 */
import { ERRORS, isOtaError, type ErrorCode } from '../../shared/errors.js';

/** An error answer. */
export interface ApiError {
  status: number;
  code: ErrorCode;
  message: string;
}

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

interface FastifyishError {
  statusCode?: number;
  code?: string;
  message?: string;
  validation?: AjvIssue[];
  validationContext?: string;
}

function field(context: string, path: string | undefined, name?: unknown): string {
  const parts = (path ?? '').split('/').filter((p) => p !== '');
  if (typeof name === 'string') parts.push(name);
  return parts.length === 0 ? context : `${context} field "${parts.join('.')}"`;
}

/** One sentence naming what in the request broke the schema. */
export function describeValidation(context: string, issue: AjvIssue | undefined): string {
  if (!issue) return `${context} does not match the schema`;
  const p = issue.params ?? {};
  switch (issue.keyword) {
    case 'additionalProperties':
      return `${field(context, issue.instancePath, p.additionalProperty)} is unknown`;
    case 'required':
      return `${field(context, issue.instancePath, p.missingProperty)} is required`;
    default:
      return `${field(context, issue.instancePath)} ${issue.message ?? 'is invalid'}`;
  }
}

const BY_FASTIFY_CODE: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'REQUEST_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'REQUEST_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'REQUEST_MALFORMED',
  FST_ERR_CTP_INVALID_JSON_BODY: 'REQUEST_MALFORMED',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'REQUEST_MALFORMED',
};

const BY_STATUS: Readonly<Record<number, ErrorCode>> = { 404: 'ROUTE_NOT_FOUND', 413: 'REQUEST_TOO_LARGE', 415: 'REQUEST_MEDIA_TYPE' };

/** The answer for `code`, with the catalogue's status. */
export function apiError(code: ErrorCode, message: string): ApiError {
  return { status: ERRORS[code].status, code, message };
}

/** The answer for `err`. */
export function toApiError(err: unknown): ApiError {
  if (isOtaError(err)) return { status: err.status, code: err.code, message: err.message };
  const e = (err ?? {}) as FastifyishError;
  if (Array.isArray(e.validation)) {
    return apiError('REQUEST_INVALID', describeValidation(e.validationContext ?? 'request', e.validation[0]));
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = (e.code ? BY_FASTIFY_CODE[e.code] : undefined) ?? BY_STATUS[status] ?? 'REQUEST_MALFORMED';
    const statusOut = code === 'REQUEST_MALFORMED' ? 400 : status;
    return { status: statusOut, code, message: e.message ?? 'the request is malformed' };
  }
  return apiError('SERVER_INTERNAL', 'the server failed while handling the request; its log has the detail');
}
