import type { Orm } from '../../db/orm.js';
import type { CommandRunner } from '../../actors/command.js';
import type { UrlSigner } from './views.js';

/** What route handlers may use. Commands go through the runner; reads use a fresh EntityManager. */
export interface RouteServices {
  orm: Orm;
  runner: CommandRunner;
  version: string;
  /** Presigned GET URLs for attachment keys ("" when storage is not configured). */
  signUrl: UrlSigner;
  /** Users among `ids` that are online now; an empty set when presence is off. */
  online(ids: string[]): Promise<Set<string>>;
  /** Readiness checks by component name. */
  readiness(): Promise<Record<string, boolean>>;
}
