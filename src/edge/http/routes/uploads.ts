// Chat API: direct-to-S3 uploads and attachment download URLs.
import { Type } from '@sinclair/typebox';
import { attachmentAccess } from '../../../db/queries/attachments.js';
import { dialogAccess } from '../../../db/queries/messages.js';
import { ALLOWED_MIME_TYPES, isAllowedMime, keyExtension } from '../../../domain/attachments.js';
import { AppError, dialogNotFound, internalError, mustJoinFirst } from '../../../domain/errors.js';
import { newId } from '../../../domain/ids.js';
import { MAX_FILE_SIZE } from '../../../domain/limits.js';
import { data, route, type RouteDef } from '../route.js';
import { IdParams, Uuid } from '../schemas.js';
import type { RouteServices } from '../services.js';

const PresignBody = Type.Object({
  dialog_id: Uuid,
  filename: Type.String(),
  content_type: Type.String(),
  size: Type.Integer(),
});

const ALLOWED_LIST = `[${ALLOWED_MIME_TYPES.map((t) => JSON.stringify(t)).join(', ')}]`;

export function uploadRoutes(s: RouteServices): RouteDef[] {
  return [
    route({
      method: 'POST', path: '/api/v1/upload/presign', auth: 'user', summary: 'Presigned PUT URL for uploading an attachment',
      body: PresignBody,
      handler: async ({ caller, body }) => {
        const storage = s.storage;
        // The spec's answer when uploads are disabled (S3 not configured).
        if (!storage) throw internalError();
        if (!isAllowedMime(body.content_type)) {
          throw new AppError(400, 'UNSUPPORTED_FILE_TYPE', `File type '${body.content_type}' is not allowed. Allowed types: ${ALLOWED_LIST}`);
        }
        if (body.size < 1 || body.size > MAX_FILE_SIZE) {
          throw new AppError(400, 'FILE_TOO_LARGE', `File size must be between 1 byte and ${MAX_FILE_SIZE} bytes`);
        }
        const dialogId = body.dialog_id.toLowerCase();
        const access = await dialogAccess(s.orm.em.fork(), dialogId, caller.userId, null);
        if (!access.exists) throw dialogNotFound();
        if (!access.member) throw mustJoinFirst();
        const key = `dialogs/${dialogId}/${newId()}.${keyExtension(body.filename)}`;
        const url = await storage.presignUpload(key, body.content_type);
        return data({ upload_url: url, s3_key: key, expires_in: storage.uploadExpirySecs });
      },
    }),
    route({
      method: 'GET', path: '/api/v1/attachments/:id/url', auth: 'user', summary: 'Presigned download URL of an attachment',
      params: IdParams,
      handler: async ({ caller, params }) => {
        const storage = s.storage;
        if (!storage) throw internalError();
        const a = await attachmentAccess(s.orm.em.fork(), params.id.toLowerCase(), caller.userId);
        if (!a) throw new AppError(404, 'ATTACHMENT_NOT_FOUND', 'Attachment not found');
        if (!a.member) throw mustJoinFirst();
        const url = await storage.presignDownload({ key: a.s3_key, contentType: a.content_type, filename: a.filename });
        const thumb = a.thumbnail_s3_key
          ? await storage.presignDownload({ key: a.thumbnail_s3_key, contentType: 'image/jpeg', filename: '' })
          : null;
        return data({ url, thumbnail_url: thumb, expires_in: storage.downloadExpirySecs });
      },
    }),
  ];
}
