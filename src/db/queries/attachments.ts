// Read side of attachments.
import type { Em } from '../orm.js';
import { query } from './sql.js';

export interface AttachmentAccess {
  s3_key: string;
  thumbnail_s3_key: string | null;
  content_type: string;
  filename: string;
  dialog_id: string;
  /** The caller is a participant of the attachment's dialog. */
  member: boolean;
}

/** An attachment with its dialog and the caller's membership there: one statement; null when unknown. */
export async function attachmentAccess(em: Em, attachmentId: string, userId: string): Promise<AttachmentAccess | null> {
  const rows = await query(em, `SELECT a.s3_key, a.thumbnail_s3_key, a.content_type, a.filename, m.dialog_id,
      EXISTS (SELECT 1 FROM dialog_participants p WHERE p.dialog_id = m.dialog_id AND p.user_id = ?) AS member
    FROM attachments a JOIN messages m ON m.id = a.message_id WHERE a.id = ?`, [userId, attachmentId]);
  return (rows[0] as AttachmentAccess | undefined) ?? null;
}
