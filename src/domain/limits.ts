import { invalidInput } from './errors.js';

// Lengths are counted in UTF-8 bytes, as the original does, so both accept the same inputs.
export const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

export const MAX_CONTENT_BYTES = 50_000;
export const MAX_TITLE = 500;
export const MAX_DISPLAY_NAME = 200;
export const MAX_COMPANY = 200;
export const MAX_EMAIL = 254;
export const MAX_PHONE = 50;
export const MAX_IDENTIFIER = 255;
export const MAX_OBJECT_TYPE = 100;
export const MAX_FILENAME = 255;
export const MAX_CONTENT_TYPE = 100;
export const MAX_SCOPE_VALUE = 255;
export const MAX_ATTACHMENTS = 10;
export const MAX_FILE_SIZE = 104_857_600;

export function checkMaxLength(field: string, value: string | null | undefined, max: number): void {
  if (value != null && byteLength(value) > max) {
    throw invalidInput(`${field} exceeds maximum length of ${max} characters`);
  }
}

/** PostgreSQL text cannot hold NUL: such a value is refused here rather than failing its statement. */
export function checkNoNul(field: string, value: string | null | undefined): void {
  if (value != null && value.includes('\0')) throw invalidInput(`${field} must not contain null bytes`);
}

export function checkRequired(field: string, value: string | null | undefined): void {
  if (value == null || value.trim() === '') throw invalidInput(`${field} is required`);
}

/** External identifiers (user ids, object ids): non-empty, at most 255 bytes. */
export function checkIdentifier(field: string, value: string, max = MAX_IDENTIFIER): void {
  if (value.length === 0) throw invalidInput(`${field} is required`);
  checkMaxLength(field, value, max);
}

export interface ProfileInput {
  display_name: string;
  company?: string | null;
  email?: string | null;
  phone?: string | null;
}

/** The original's order: display_name, company, email, phone. */
export function checkProfile(p: ProfileInput): void {
  checkRequired('display_name', p.display_name);
  checkMaxLength('display_name', p.display_name, MAX_DISPLAY_NAME);
  checkMaxLength('company', p.company, MAX_COMPANY);
  checkMaxLength('email', p.email, MAX_EMAIL);
  checkMaxLength('phone', p.phone, MAX_PHONE);
}

export function checkContentLength(content: string): void {
  if (byteLength(content) > MAX_CONTENT_BYTES) {
    throw invalidInput(`Message content exceeds maximum length of ${MAX_CONTENT_BYTES} characters`);
  }
}
