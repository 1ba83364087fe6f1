// Chat API: messages of one dialog.
import { attachmentsOf, messageInDialog, messagePage, readerState, type PageMode } from '../../../db/queries/messages.js';
import { MAX_MESSAGE_PAGE } from '../../../domain/access.js';
import { invalidInput, messageNotFound, mustJoinFirst } from '../../../domain/errors.js';
import { toDate } from '../../../domain/time.js';
import { data, noContent, route, type RouteDef } from '../route.js';
import { DialogIdParams, EditBody, ListMessagesQuery, MessageParams, SendBody } from '../schemas.js';
import type { RouteServices } from '../services.js';
import { checkAttachmentsStored } from '../attachment-check.js';
import { downloadSigner } from '../../../services/storage.js';
import { messageView, messageWithAttachmentsView } from '../views.js';

export function messageRoutes(s: RouteServices): RouteDef[] {
  const base = '/api/v1/dialogs/:dialog_id/messages';
  return [
    route({
      method: 'GET', path: base, auth: 'user', summary: 'List messages (latest, before, after or around a message)',
      params: DialogIdParams, query: ListMessagesQuery,
      handler: async ({ caller, params, query, log }) => {
        const dialogId = params.dialog_id.toLowerCase();
        const em = s.orm.em.fork();
        const me = await readerState(em, dialogId, caller.userId);
        if (!me) throw mustJoinFirst();
        if ((query.limit ?? 0) < 0) throw invalidInput('limit must not be negative');
        const limit = Math.min(query.limit ?? 50, MAX_MESSAGE_PAGE);
        const mode: PageMode = query.around ? { kind: 'around', id: query.around.toLowerCase() }
          : query.after ? { kind: 'after', id: query.after.toLowerCase() }
          : query.before ? { kind: 'before', id: query.before.toLowerCase() }
          : { kind: 'latest' };
        const page = await messagePage(em, dialogId, mode, limit);
        const atts = await attachmentsOf(em, page.rows.map((m) => m.id));
        const byMessage = new Map<string, typeof atts>();
        for (const a of atts) byMessage.set(a.message_id, [...(byMessage.get(a.message_id) ?? []), a]);

        let hasBefore: boolean;
        let hasAfter: boolean;
        if (mode.kind === 'around') {
          const h = Math.floor(limit / 2);
          hasBefore = page.before >= h;
          hasAfter = page.from > h;
        } else {
          hasBefore = mode.kind === 'after' ? true : page.rows.length >= limit;
          hasAfter = mode.kind === 'after' ? page.rows.length >= limit : false;
        }
        const sign = await downloadSigner(s.storage, atts, (key, e) => log.warn({ err: e, key }, 'presigning a download URL failed'));
        const result: Record<string, unknown> = {
          messages: page.rows.map((m) => messageWithAttachmentsView(m, byMessage.get(m.id) ?? [], sign)),
        };
        if (mode.kind !== 'around') {
          const first = firstUnread(page.rows, me.last_read_message_id, me.read_sent_at);
          if (first) result.first_unread_message_id = first;
        }
        result.has_more_before = hasBefore;
        result.has_more_after = hasAfter;
        return data(result);
      },
    }),
    route({
      method: 'POST', path: base, auth: 'user', summary: 'Send a message', params: DialogIdParams, body: SendBody, measuresSend: true,
      handler: async ({ caller, params, body, log }) => {
        const dialogId = params.dialog_id.toLowerCase();
        await checkAttachmentsStored(s.orm, s.storage, dialogId, caller.userId, body.attachments ?? []);
        const sent = await s.gateway.execute('sendMessage', dialogId, {
          dialog_id: dialogId, user_id: caller.userId, content: body.content,
          reply_to: body.reply_to?.toLowerCase() ?? null, attachments: body.attachments ?? [], client_msg_id: body.client_msg_id ?? null,
        });
        const sign = await downloadSigner(s.storage, sent.attachments, (key, e) => log.warn({ err: e, key }, 'presigning a download URL failed'));
        return data(messageWithAttachmentsView(sent.message, sent.attachments, sign));
      },
    }),
    route({
      method: 'GET', path: `${base}/:id`, auth: 'user', summary: 'Get one message', params: MessageParams,
      handler: async ({ caller, params }) => {
        const em = s.orm.em.fork();
        const dialogId = params.dialog_id.toLowerCase();
        if (!(await readerState(em, dialogId, caller.userId))) throw mustJoinFirst();
        const m = await messageInDialog(em, dialogId, params.id.toLowerCase());
        if (!m) throw messageNotFound();
        return data(messageView(m));
      },
    }),
    route({
      method: 'PUT', path: `${base}/:id`, auth: 'user', summary: 'Edit own message', params: MessageParams, body: EditBody,
      handler: async ({ caller, params, body }) => {
        const dialogId = params.dialog_id.toLowerCase();
        const { message } = await s.gateway.execute('editMessage', dialogId, {
          dialog_id: dialogId, message_id: params.id.toLowerCase(), user_id: caller.userId, content: body.content,
        });
        return data(messageView(message));
      },
    }),
    route({
      method: 'DELETE', path: `${base}/:id`, auth: 'user', summary: 'Delete own message', params: MessageParams, successStatus: 204,
      handler: async ({ caller, params }) => {
        const dialogId = params.dialog_id.toLowerCase();
        await s.gateway.execute('deleteMessage', dialogId, { dialog_id: dialogId, message_id: params.id.toLowerCase(), user_id: caller.userId });
        return noContent();
      },
    }),
  ];
}

/** The spec's first-unread rule, evaluated on the page only. */
function firstUnread(rows: { id: string; sent_at: Date | string }[], lastRead: string | null, readSentAt: Date | string | null): string | null {
  if (rows.length === 0) return null;
  if (lastRead === null || readSentAt === null) return rows[0].id;
  const readAt = toDate(readSentAt).getTime();
  return rows.find((m) => toDate(m.sent_at).getTime() > readAt)?.id ?? null;
}
