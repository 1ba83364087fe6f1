import type { Orm } from '../../db/orm.js';
import type { CommandGateway } from '../../actors/gateway.js';
import type { UrlSigner } from './views.js';

/** What route handlers may use. Commands go to the dialog's owner; reads use a fresh EntityManager. */
export interface RouteServices {
  orm: Orm;
  gateway: CommandGateway;
  version: string;
  /** Presigned GET URLs for attachment keys ("" when storage is not configured). */
  signUrl: UrlSigner;
  /** Users among `ids` that are online now; an empty set when presence is off. */
  online(ids: string[]): Promise<Set<string>>;
  /** The Prometheus text exposition of this process's metrics. */
  metricsText(): Promise<string>;
  /** Readiness checks by component name. */
  readiness(): Promise<Record<string, boolean>>;
}
