import { Migration } from '@mikro-orm/migrations';

// The auto-archive sweep asks every dialog for its newest message's sent_at; this makes that an
// index lookup instead of a scan of the dialog's messages.
export class Migration20261204000004_archive_activity extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_messages_dialog_sent_at ON messages (dialog_id, sent_at DESC)`);
  }
}
