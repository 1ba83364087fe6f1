// send / edit / delete / read over the socket: the REST endpoint's checks and command, answered
// by an `ack` or by an `error` with the REST answer's code and message.
import type { Logger } from 'pino';
import type { CommandGateway } from '../../actors/gateway.js';
import type { Orm } from '../../db/orm.js';
import { AppError } from '../../domain/errors.js';
import { downloadSigner, type Storage } from '../../services/storage.js';
import { checkAttachmentsStored } from '../http/attachment-check.js';
import { messageView, messageWithAttachmentsView } from '../http/views.js';
import type { ClientFrame } from './frames.js';

export type CommandFrame = Extract<ClientFrame, { type: 'send' | 'edit' | 'delete' | 'read' }>;

export function errorFrame(e: AppError, id?: string): Record<string, unknown> {
  const f: Record<string, unknown> = { type: 'error' };
  if (id !== undefined) f.id = id;
  f.code = e.code;
  f.message = e.message;
  const retry = e.headers['Retry-After'];
  if (retry !== undefined) f.retry_after_secs = Number(retry);
  return f;
}

export class WsCommands {
  constructor(private readonly d: { gateway: CommandGateway; orm: Orm; storage: Storage | null; log: Logger }) {}

  /** The frame to answer with; never throws. */
  async run(userId: string, f: CommandFrame): Promise<Record<string, unknown>> {
    try {
      return { type: 'ack', id: f.id, ...(await this.execute(userId, f)) };
    } catch (e) {
      if (e instanceof AppError) return errorFrame(e, f.id);
      this.d.log.error({ err: e, frame: f.type }, 'websocket command failed');
      return errorFrame(new AppError(500, 'INTERNAL_ERROR', 'Internal server error'), f.id);
    }
  }

  private async execute(userId: string, f: CommandFrame): Promise<Record<string, unknown>> {
    const g = this.d.gateway;
    switch (f.type) {
      case 'send': {
        const atts = f.body.attachments ?? [];
        await checkAttachmentsStored(this.d.orm, this.d.storage, f.dialogId, userId, atts);
        const sent = await g.execute('sendMessage', f.dialogId, {
          dialog_id: f.dialogId, user_id: userId, content: f.body.content,
          reply_to: f.body.reply_to?.toLowerCase() ?? null, attachments: atts, client_msg_id: f.body.client_msg_id ?? null,
        });
        const sign = await downloadSigner(this.d.storage, sent.attachments, (key, e) => this.d.log.warn({ err: e, key }, 'presigning a download URL failed'));
        return {
          message_id: sent.message.id,
          seq: Number(sent.message.seq),
          message: messageWithAttachmentsView(sent.message, sent.attachments, sign),
        };
      }
      case 'edit': {
        const { message } = await g.execute('editMessage', f.dialogId, { dialog_id: f.dialogId, message_id: f.messageId, user_id: userId, content: f.content });
        return { message_id: message.id, message: messageView(message) };
      }
      case 'delete':
        await g.execute('deleteMessage', f.dialogId, { dialog_id: f.dialogId, message_id: f.messageId, user_id: userId });
        return { ok: true };
      case 'read':
        await g.execute('markRead', f.dialogId, { dialog_id: f.dialogId, user_id: userId, message_id: f.messageId });
        return { ok: true };
    }
  }
}
