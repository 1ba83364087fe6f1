// A dialog's partition is a fixed function of its id so every process agrees without coordination.
// The count is part of the stored data (dialogs.partition): changing it needs a data migration.
export const PARTITION_COUNT = 256;

export function partitionOf(dialogId: string): number {
  // FNV-1a over the id's text: stable, cheap, and spreads UUIDv7 (whose prefix is a timestamp) evenly.
  let h = 0x811c9dc5;
  for (let i = 0; i < dialogId.length; i++) {
    h ^= dialogId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % PARTITION_COUNT;
}
