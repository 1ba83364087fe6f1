// Send message, check 4: the attachments' objects must exist in storage.
import { dialogAccess } from '../../db/queries/messages.js';
import type { Orm } from '../../db/orm.js';
import { checkAttachment, checkAttachmentCount, type AttachmentInput } from '../../domain/attachments.js';
import { badRequest, dialogNotFound, mustJoinFirst } from '../../domain/errors.js';
import type { Storage } from '../../services/storage.js';

/**
 * Runs before the send command, outside its transaction, so no lock is held across S3 round trips.
 * The spec checks each attachment in turn (key rules, MIME, size, then HEAD); the HEADs run in
 * parallel here, yet the answer is the same as a sequential walk: the first attachment that fails a
 * check, or whose object is missing, decides. The cheap checks before it (dialog, participant,
 * count) run first so their errors keep precedence. The command repeats all but the HEAD.
 * A send without attachments (nearly all of them) costs nothing here, not even an EntityManager.
 */
export async function checkAttachmentsStored(orm: Orm, storage: Storage | null, dialogId: string, userId: string, list: AttachmentInput[]): Promise<void> {
  // Without storage the existence check is skipped, as in the original.
  if (!storage || list.length === 0) return;
  const access = await dialogAccess(orm.em.fork(), dialogId, userId, null);
  if (!access.exists) throw dialogNotFound();
  if (!access.member) throw mustJoinFirst();
  checkAttachmentCount(list);

  const seen = new Set<string>();
  const valid: string[] = [];
  let invalid: unknown = null;
  for (const a of list) {
    try {
      checkAttachment(a, dialogId, seen);
    } catch (e) {
      invalid = e;
      break;
    }
    valid.push(a.s3_key);
  }
  // Only keys that passed the key rules ever reach the store.
  const found = await storage.exists(valid);
  const missing = found.indexOf(false);
  if (missing >= 0) throw badRequest(`File not found in storage: ${valid[missing]}`);
  if (invalid) throw invalid;
}
