// Errors that reach a client: the status and code are part of the wire contract.
export type ErrorCode =
  | 'BAD_REQUEST' | 'INVALID_INPUT' | 'FILE_TOO_LARGE' | 'UNSUPPORTED_FILE_TYPE' | 'TOO_MANY_ATTACHMENTS'
  | 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_PARTICIPANT' | 'NOT_MESSAGE_AUTHOR' | 'SCOPE_MISMATCH'
  | 'DIALOG_NOT_FOUND' | 'NOT_FOUND' | 'MESSAGE_NOT_FOUND' | 'ATTACHMENT_NOT_FOUND' | 'PARTICIPANT_NOT_FOUND'
  | 'PAYLOAD_TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE' | 'METHOD_NOT_ALLOWED'
  | 'RATE_LIMIT_EXCEEDED' | 'OVERLOADED' | 'INTERNAL_ERROR';

export class AppError extends Error {
  constructor(readonly status: number, readonly code: ErrorCode, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export const badRequest = (m: string) => new AppError(400, 'BAD_REQUEST', m);
export const invalidInput = (m: string) => new AppError(400, 'INVALID_INPUT', m);
export const forbidden = (m: string) => new AppError(403, 'FORBIDDEN', m);

export const NOT_PARTICIPANT_JOIN_FIRST = 'Not a participant. Join the dialog first.';
export const dialogNotFound = () => new AppError(404, 'DIALOG_NOT_FOUND', 'Dialog not found');
export const messageNotFound = () => new AppError(404, 'MESSAGE_NOT_FOUND', 'Message not found');
export const notParticipant = () => new AppError(403, 'NOT_PARTICIPANT', 'Not a participant');
export const mustJoinFirst = () => forbidden(NOT_PARTICIPANT_JOIN_FIRST);
export const internalError = () => new AppError(500, 'INTERNAL_ERROR', 'Internal server error');
