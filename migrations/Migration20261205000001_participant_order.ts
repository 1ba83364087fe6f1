import { Migration } from '@mikro-orm/migrations';

// "My dialogs, newest first" for a user in thousands of dialogs: with the dialog's creation time
// copied onto the membership row, the page is read in index order (the first 50 entries) instead of
// joining and sorting every membership. Triggers keep the copy, so every writer (and a database
// shared with the original service) fills it without knowing, and an edited created_at follows.
export class Migration20261205000001_participant_order extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE dialog_participants ADD COLUMN IF NOT EXISTS dialog_created_at TIMESTAMPTZ`);
    this.addSql(`CREATE OR REPLACE FUNCTION mtchat_participant_dialog_created_at() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        SELECT created_at INTO NEW.dialog_created_at FROM dialogs WHERE id = NEW.dialog_id;
        RETURN NEW;
      END $$`);
    this.addSql(`DROP TRIGGER IF EXISTS trg_participant_dialog_created_at ON dialog_participants`);
    this.addSql(`CREATE TRIGGER trg_participant_dialog_created_at BEFORE INSERT ON dialog_participants
      FOR EACH ROW EXECUTE FUNCTION mtchat_participant_dialog_created_at()`);
    this.addSql(`CREATE OR REPLACE FUNCTION mtchat_dialog_created_at_sync() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE dialog_participants SET dialog_created_at = NEW.created_at
          WHERE dialog_id = NEW.id AND dialog_created_at IS DISTINCT FROM NEW.created_at;
        RETURN NULL;
      END $$`);
    this.addSql(`DROP TRIGGER IF EXISTS trg_dialog_created_at_sync ON dialogs`);
    // Both orders of one transaction's inserts: the unit of work may write memberships before their
    // dialog (the foreign key is checked at commit), and then the dialog's insert fills them.
    this.addSql(`CREATE TRIGGER trg_dialog_created_at_sync AFTER INSERT OR UPDATE OF created_at ON dialogs
      FOR EACH ROW EXECUTE FUNCTION mtchat_dialog_created_at_sync()`);
    // The index before the backfill: an index cannot be built on a table with pending trigger events.
    this.addSql(`CREATE INDEX IF NOT EXISTS idx_participants_user_dialog_order
      ON dialog_participants (user_id, dialog_created_at DESC, dialog_id DESC)`);
    this.addSql(`UPDATE dialog_participants p SET dialog_created_at = d.created_at FROM dialogs d
      WHERE d.id = p.dialog_id AND p.dialog_created_at IS NULL`);
  }
}
