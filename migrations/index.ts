// Listed explicitly so the same list works from source (tsx) and from compiled output.
import { Migration20261204000001_baseline } from './Migration20261204000001_baseline.js';
import { Migration20261204000002_cluster } from './Migration20261204000002_cluster.js';
import { Migration20261204000003_events } from './Migration20261204000003_events.js';
import { Migration20261204000004_archive_activity } from './Migration20261204000004_archive_activity.js';
import { Migration20261205000001_participant_order } from './Migration20261205000001_participant_order.js';

export const migrationsList = [
  { name: 'Migration20261204000001_baseline', class: Migration20261204000001_baseline },
  { name: 'Migration20261204000002_cluster', class: Migration20261204000002_cluster },
  { name: 'Migration20261204000003_events', class: Migration20261204000003_events },
  { name: 'Migration20261204000004_archive_activity', class: Migration20261204000004_archive_activity },
  { name: 'Migration20261205000001_participant_order', class: Migration20261205000001_participant_order },
];
