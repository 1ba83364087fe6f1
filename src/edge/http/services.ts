import type { Orm } from '../../db/orm.js';
import type { CommandGateway } from '../../actors/gateway.js';
import type { Storage } from '../../services/storage.js';

/** What route handlers may use. Commands go to the dialog's owner; reads use a fresh EntityManager. */
export interface RouteServices {
  orm: Orm;
  gateway: CommandGateway;
  version: string;
  /** Attachment storage (presigned URLs, existence checks); null when S3 is not configured. */
  storage: Storage | null;
  /** Users among `ids` that are online now; an empty set when presence is off. */
  online(ids: string[]): Promise<Set<string>>;
  /** The Prometheus text exposition of this process's metrics. */
  metricsText(): Promise<string>;
  /**
   * Readiness by component name. `ready` counts only what the service cannot work without;
   * optional components (Redis) are reported but do not take the process out of rotation.
   */
  readiness(): Promise<{ ready: boolean; checks: Record<string, boolean> }>;
}
