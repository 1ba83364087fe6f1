import { Migration } from '@mikro-orm/migrations';

// The per-dialog event log (gap-free resume), the seq at which each participant joined (resume
// never reaches back before it), and processed command request ids (a retried command has one effect).
export class Migration20261204000003_events extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE dialog_participants ADD COLUMN IF NOT EXISTS joined_seq BIGINT NOT NULL DEFAULT 0`);
    this.addSql(`
      CREATE TABLE IF NOT EXISTS dialog_events (
        dialog_id UUID NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        seq BIGINT NOT NULL,
        payload JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        PRIMARY KEY (dialog_id, seq)
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_dialog_events_created_at ON dialog_events (created_at)`);
    this.addSql(`
      CREATE TABLE IF NOT EXISTS command_log (
        request_id TEXT PRIMARY KEY,
        result JSONB,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
      )`);
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_command_log_created_at ON command_log (created_at)`);
  }
}
