// A dialog's partition is a fixed function of its id so every process agrees without coordination.
// The count is part of the stored data (dialogs.partition): changing it needs a data migration.
export const PARTITION_COUNT = 256;

// FNV-1a over the text: stable, cheap, and spreads UUIDv7 (whose prefix is a timestamp) evenly.
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function partitionOf(dialogId: string): number {
  return fnv1a(dialogId) % PARTITION_COUNT;
}

/** User subjects are grouped in this many shards: an edge subscribes per shard, not per user. */
export const USER_SHARDS = 64;
export const userShardOf = (userId: string): number => fnv1a(userId) % USER_SHARDS;
