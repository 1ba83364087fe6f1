import { AppError, badRequest, invalidInput } from './errors.js';
import { MAX_CONTENT_TYPE, MAX_FILENAME, MAX_FILE_SIZE, checkMaxLength, checkNoNul } from './limits.js';

// Order matters: the presign error message prints the list in this order.
export const ALLOWED_MIME_TYPES: readonly string[] = [
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/svg+xml', 'image/bmp', 'image/tiff',
  'application/pdf', 'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.ms-powerpoint', 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text', 'application/vnd.oasis.opendocument.spreadsheet',
  'application/vnd.oasis.opendocument.presentation', 'application/rtf',
  'text/plain', 'text/csv', 'text/markdown', 'text/html', 'text/xml', 'application/json',
  'application/zip', 'application/x-rar-compressed', 'application/vnd.rar', 'application/x-7z-compressed', 'application/gzip', 'application/x-tar',
  'audio/mpeg', 'audio/wav', 'audio/ogg', 'audio/mp4',
  'video/mp4', 'video/webm', 'video/ogg', 'video/quicktime',
];
const ALLOWED = new Set(ALLOWED_MIME_TYPES);
/** The browser could not detect a type: allowed, as in the original. */
export const isAllowedMime = (t: string): boolean => t === '' || ALLOWED.has(t);

export interface AttachmentInput {
  s3_key: string;
  filename: string;
  content_type: string;
  size: number;
}

/** Key rules checked at send time, in the original's order. */
export function checkS3Key(key: string, dialogId: string): void {
  if (key.includes('..')) throw invalidInput('Invalid S3 key: path traversal not allowed');
  if (key.includes('%2e') || key.includes('%2E')) throw invalidInput('Invalid S3 key: encoded characters not allowed');
  if (key.includes('\0')) throw invalidInput('Invalid S3 key: null bytes not allowed');
  if (!key.startsWith(`dialogs/${dialogId}/`)) throw invalidInput('Invalid S3 key: file does not belong to this dialog');
  checkMaxLength('s3_key', key, 512);
}

export function checkAttachments(list: AttachmentInput[], dialogId: string): void {
  checkAttachmentCount(list);
  const seen = new Set<string>();
  for (const a of list) checkAttachment(a, dialogId, seen);
}

export function checkAttachmentCount(list: AttachmentInput[]): void {
  // The docs promised TOO_MANY_ATTACHMENTS; status and message stay the original's.
  if (list.length > 10) throw new AppError(400, 'TOO_MANY_ATTACHMENTS', 'Maximum 10 attachments per message');
}

/** The stateless checks of one attachment; `seen` collects the keys of the ones before it. */
export function checkAttachment(a: AttachmentInput, dialogId: string, seen: Set<string>): void {
  checkS3Key(a.s3_key, dialogId);
  if (!isAllowedMime(a.content_type)) throw badRequest(`File type '${a.content_type}' is not allowed`);
  if (!Number.isInteger(a.size) || a.size < 1 || a.size > MAX_FILE_SIZE) throw badRequest('Invalid file size');
  checkMaxLength('filename', a.filename, MAX_FILENAME);
  checkMaxLength('content_type', a.content_type, MAX_CONTENT_TYPE);
  checkNoNul('filename', a.filename);
  if (seen.has(a.s3_key)) throw invalidInput('s3_key is used twice in this message');
  seen.add(a.s3_key);
}

/** Presign: `<ext>` is what follows the last dot (the whole name without one), ASCII letters and digits only, ≤ 16, lower-case; else `bin`. */
export function keyExtension(filename: string): string {
  const dot = filename.lastIndexOf('.');
  const raw = dot >= 0 ? filename.slice(dot + 1) : filename;
  const ext = raw.replace(/[^A-Za-z0-9]/g, '').slice(0, 16).toLowerCase();
  return ext === '' ? 'bin' : ext;
}

// Types a browser would render and run script from when opened inline.
const ACTIVE_TYPES = new Set(['text/html', 'image/svg+xml', 'text/xml', 'application/xml', '']);
export const isActiveContent = (t: string): boolean => ACTIVE_TYPES.has(t);
