import { Migration } from '@mikro-orm/migrations';

// The original's final schema, written so that it is a no-op on a database the original already
// created (every statement is IF NOT EXISTS): a deployment can move over without a dump/restore.
export class Migration20261204000001_baseline extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE EXTENSION IF NOT EXISTS pg_trgm`);
    this.addSql(`
      CREATE TABLE IF NOT EXISTS dialogs (
        id UUID PRIMARY KEY,
        object_id TEXT NOT NULL CONSTRAINT chk_object_id_length CHECK (length(object_id) <= 255),
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        object_type VARCHAR(100) NOT NULL,
        title VARCHAR(500),
        created_by TEXT CONSTRAINT chk_created_by_length CHECK (created_by IS NULL OR length(created_by) <= 255),
        object_url TEXT,
        meta JSONB
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialogs_object ON dialogs (object_id, object_type)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialogs_object_type ON dialogs (object_type)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialogs_created_by ON dialogs (created_by) WHERE created_by IS NOT NULL`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialogs_title_trgm ON dialogs USING GIN (title gin_trgm_ops)`);

    this.addSql(`
      CREATE TABLE IF NOT EXISTS messages (
        id UUID PRIMARY KEY,
        dialog_id UUID NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
        sender_id TEXT CONSTRAINT chk_sender_id_length CHECK (sender_id IS NULL OR length(sender_id) <= 255),
        content TEXT NOT NULL,
        sent_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        last_edited_at TIMESTAMPTZ,
        reply_to_id UUID REFERENCES messages(id) ON DELETE SET NULL,
        message_type VARCHAR(20) NOT NULL DEFAULT 'user' CONSTRAINT chk_message_type CHECK (message_type IN ('user', 'system')),
        CONSTRAINT chk_system_sender CHECK ((message_type = 'system' AND sender_id IS NULL) OR (message_type = 'user' AND sender_id IS NOT NULL))
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_messages_dialog_id ON messages (dialog_id, id DESC)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_messages_sender_id ON messages (sender_id)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_messages_reply_to ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL`);

    this.addSql(`
      CREATE TABLE IF NOT EXISTS dialog_participants (
        user_id TEXT NOT NULL CONSTRAINT chk_user_id_length CHECK (length(user_id) <= 255),
        dialog_id UUID NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
        last_read_message_id UUID,
        joined_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        joined_as VARCHAR(50) NOT NULL DEFAULT 'participant',
        notifications_enabled BOOLEAN NOT NULL DEFAULT TRUE,
        unread_count INTEGER NOT NULL DEFAULT 0,
        display_name VARCHAR(255),
        company VARCHAR(255),
        email VARCHAR(255),
        phone VARCHAR(50),
        is_archived BOOLEAN NOT NULL DEFAULT FALSE,
        is_pinned BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (user_id, dialog_id),
        CONSTRAINT fk_dialog_participants_last_read_message FOREIGN KEY (last_read_message_id) REFERENCES messages(id) ON DELETE SET NULL
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialog_participants_user ON dialog_participants (user_id)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialog_participants_dialog ON dialog_participants (dialog_id)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialog_participants_unread ON dialog_participants (user_id) WHERE unread_count > 0`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_participants_archived ON dialog_participants (user_id, is_archived)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialog_participants_is_pinned ON dialog_participants (user_id, is_pinned)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_participants_company_trgm ON dialog_participants USING GIN (company gin_trgm_ops)`);

    this.addSql(`
      CREATE TABLE IF NOT EXISTS dialog_access_scopes (
        id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        dialog_id UUID NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
        scope_level1 TEXT[] NOT NULL DEFAULT '{}',
        scope_level2 TEXT[] NOT NULL DEFAULT '{}',
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        scope_level0 TEXT[] NOT NULL DEFAULT '{}'
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_access_scopes_dialog ON dialog_access_scopes (dialog_id)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_access_scopes_level0 ON dialog_access_scopes USING GIN (scope_level0)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_access_scopes_level1 ON dialog_access_scopes USING GIN (scope_level1)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_access_scopes_level2 ON dialog_access_scopes USING GIN (scope_level2)`);

    this.addSql(`
      CREATE TABLE IF NOT EXISTS message_edit_history (
        id UUID PRIMARY KEY,
        message_id UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        old_content TEXT NOT NULL,
        edited_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_message_edit_history_message_id ON message_edit_history (message_id, edited_at DESC)`);

    this.addSql(`
      CREATE TABLE IF NOT EXISTS attachments (
        id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        message_id UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        filename VARCHAR(255) NOT NULL,
        content_type VARCHAR(100) NOT NULL,
        size BIGINT NOT NULL CONSTRAINT attachments_valid_size CHECK (size > 0 AND size <= 104857600),
        s3_key VARCHAR(512) NOT NULL CONSTRAINT attachments_s3_key_unique UNIQUE,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        width INTEGER,
        height INTEGER,
        thumbnail_s3_key VARCHAR(500)
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_attachments_content_type ON attachments (content_type)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_attachments_message ON attachments (message_id)`);
  }
}
