import { Migration } from '@mikro-orm/migrations';

// Additive columns and tables of the cluster design. Every new column is defaulted or nullable so
// rows written by the original stay valid, and existing rows are backfilled in the same migration.
export class Migration20261204000002_cluster extends Migration {
  override async up(): Promise<void> {
    // Same FNV-1a as src/domain/partition.ts; only used to backfill rows that predate this migration.
    this.addSql(`
      CREATE OR REPLACE FUNCTION mtchat_partition(t TEXT) RETURNS SMALLINT LANGUAGE plpgsql IMMUTABLE AS $$
      DECLARE h BIGINT := 2166136261; i INT;
      BEGIN
        FOR i IN 1..length(t) LOOP
          h := ((h # ascii(substr(t, i, 1))) * 16777619) % 4294967296;
        END LOOP;
        RETURN (h % 256)::SMALLINT;
      END $$`);

    this.addSql(`ALTER TABLE dialogs ADD COLUMN IF NOT EXISTS partition SMALLINT`);
    this.addSql(`ALTER TABLE dialogs ADD COLUMN IF NOT EXISTS last_seq BIGINT NOT NULL DEFAULT 0`);
    this.addSql(`ALTER TABLE dialogs ADD COLUMN IF NOT EXISTS user_msg_count BIGINT NOT NULL DEFAULT 0`);
    this.addSql(`UPDATE dialogs SET partition = mtchat_partition(id::text) WHERE partition IS NULL`);
    this.addSql(`UPDATE dialogs d SET user_msg_count = c.n
                 FROM (SELECT dialog_id, count(*) AS n FROM messages WHERE message_type = 'user' GROUP BY dialog_id) c
                 WHERE c.dialog_id = d.id AND d.user_msg_count = 0`);
    this.addSql(`ALTER TABLE dialogs ALTER COLUMN partition SET NOT NULL`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialogs_partition ON dialogs (partition)`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialogs_created_at_id ON dialogs (created_at DESC, id DESC)`);

    // unread = unread_count + (dialogs.user_msg_count - read_mark): existing counts stay as they were.
    this.addSql(`ALTER TABLE dialog_participants ADD COLUMN IF NOT EXISTS read_mark BIGINT`);
    this.addSql(`UPDATE dialog_participants p SET read_mark = d.user_msg_count FROM dialogs d WHERE d.id = p.dialog_id AND p.read_mark IS NULL`);
    this.addSql(`ALTER TABLE dialog_participants ALTER COLUMN read_mark SET DEFAULT 0`);
    this.addSql(`ALTER TABLE dialog_participants ALTER COLUMN read_mark SET NOT NULL`);

    this.addSql(`ALTER TABLE messages ADD COLUMN IF NOT EXISTS seq BIGINT`);
    this.addSql(`ALTER TABLE messages ADD COLUMN IF NOT EXISTS client_msg_id TEXT`);
    this.addSql(`CREATE UNIQUE INDEX IF NOT EXISTS uq_messages_dialog_seq ON messages (dialog_id, seq)`);
    this.addSql(`CREATE UNIQUE INDEX IF NOT EXISTS uq_messages_client_msg_id ON messages (dialog_id, sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL`);

    // Foreign keys are checked at commit, so one unit of work may insert a message, its attachments
    // and the sender's read pointer in whatever order the ORM flushes them. Cascades stay immediate.
    this.addSql(`
      DO $$ DECLARE c RECORD; BEGIN
        FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
                 WHERE contype = 'f' AND NOT condeferrable
                   AND conrelid::regclass::text IN ('dialog_participants','dialog_access_scopes','messages','message_edit_history','attachments')
        LOOP
          EXECUTE format('ALTER TABLE %s ALTER CONSTRAINT %I DEFERRABLE INITIALLY DEFERRED', c.tbl, c.conname);
        END LOOP;
      END $$`);

    this.addSql(`
      CREATE TABLE IF NOT EXISTS outbox (
        id UUID PRIMARY KEY,
        kind TEXT NOT NULL,
        dialog_id UUID,
        payload JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_outbox_created_at ON outbox (created_at, id)`);
  }
}
