// Attachment storage on S3 (or MinIO, R2, a local fake): presigned URLs and existence checks.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from '../config/env.js';
import { isActiveContent } from '../domain/attachments.js';
import type { Logger } from '../observability/logger.js';

export type S3Config = NonNullable<Config['s3']>;

// The SDK warns once per process that future releases will need Node 22; the pinned release works on 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

function client(cfg: S3Config, endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: cfg.region,
    forcePathStyle: true,
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    // The default (WHEN_SUPPORTED) signs a CRC32 of the empty body into presigned PUT URLs, which
    // real S3, MinIO and R2 then reject for any non-empty upload.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A hanging store must not hold a send request forever.
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 10_000 },
  });
}

/** What a download URL is signed for. */
export interface DownloadTarget {
  key: string;
  contentType: string;
  filename: string;
}

export class Storage {
  /** Talks to the store (HEAD). */
  private readonly api: S3Client;
  /** Only signs: URLs carry the public host, and the host is part of a SigV4 signature. */
  private readonly signer: S3Client;
  readonly uploadExpirySecs: number;
  readonly downloadExpirySecs: number;

  constructor(private readonly cfg: S3Config) {
    this.api = client(cfg, cfg.endpoint);
    this.signer = cfg.publicEndpoint === cfg.endpoint ? this.api : client(cfg, cfg.publicEndpoint);
    this.uploadExpirySecs = cfg.uploadExpirySecs;
    this.downloadExpirySecs = cfg.downloadExpirySecs;
  }

  /** Presigned PUT; the upload must send exactly this Content-Type (it is part of the signature). */
  presignUpload(key: string, contentType: string): Promise<string> {
    return getSignedUrl(this.signer, new PutObjectCommand({ Bucket: this.cfg.bucket, Key: key, ContentType: contentType }), {
      expiresIn: this.uploadExpirySecs,
      signableHeaders: new Set(['content-type']),
    });
  }

  /** Presigned GET; active content (HTML, SVG, …) is forced to download so it cannot run script on open. */
  presignDownload(t: DownloadTarget): Promise<string> {
    return getSignedUrl(this.signer, new GetObjectCommand({
      Bucket: this.cfg.bucket, Key: t.key,
      ResponseContentDisposition: isActiveContent(t.contentType) ? attachmentDisposition(t.filename) : undefined,
    }), { expiresIn: this.downloadExpirySecs });
  }

  /**
   * Whether each key exists, HEADs in parallel; results in the order of `keys`.
   * A missing object is `false`; any other failure (auth, network, 5xx) throws.
   */
  async exists(keys: string[]): Promise<boolean[]> {
    const settled = await Promise.allSettled(keys.map((Key) => this.api.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key }))));
    return settled.map((r) => {
      if (r.status === 'fulfilled') return true;
      if (isNotFound(r.reason)) return false;
      throw r.reason;
    });
  }

  /** Readiness: the bucket answers a HEAD (a missing probe object still proves it is reachable). */
  async reachable(timeoutMs = 2000): Promise<boolean> {
    try {
      await this.api.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: 'mtchat-readiness-probe' }), { abortSignal: AbortSignal.timeout(timeoutMs) });
      return true;
    } catch (e) {
      return isNotFound(e);
    }
  }

  close(): void {
    this.api.destroy();
    if (this.signer !== this.api) this.signer.destroy();
  }
}

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NotFound' || err?.name === 'NoSuchKey' || err?.$metadata?.httpStatusCode === 404;
}

/**
 * RFC 6266 value. The exact UTF-8 name (RFC 5987 `filename*`) is added only when the plain quoted
 * form cannot carry it: its `'` and `*` are encoded differently by some S3 look-alikes (s3rver
 * canonicalises query values with encodeURIComponent, not RFC 3986), so they would refuse the URL.
 */
export function attachmentDisposition(filename: string): string {
  if (filename === '') return 'attachment';
  if (/^[\x20-\x7e]*$/.test(filename) && !/["\\'()*!]/.test(filename)) return `attachment; filename="${filename}"`;
  const ascii = filename.replace(/[^\x20-\x7e]|["\\'()*!]/g, '_');
  const exact = encodeURIComponent(filename).replace(/['()*!]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

/**
 * Download URLs for a page of attachments (and their thumbnails), computed locally before the
 * synchronous views run; a key that could not be signed, or any key without storage, maps to "".
 */
export async function downloadSigner(
  storage: Storage | null,
  atts: { s3_key: string; content_type: string; filename: string; thumbnail_s3_key?: string | null }[],
  onError: (key: string, e: unknown) => void = () => {},
): Promise<(key: string) => string> {
  if (!storage || atts.length === 0) return () => '';
  const targets: DownloadTarget[] = [];
  for (const a of atts) {
    targets.push({ key: a.s3_key, contentType: a.content_type, filename: a.filename });
    // Thumbnails are images this service would have generated itself.
    if (a.thumbnail_s3_key) targets.push({ key: a.thumbnail_s3_key, contentType: 'image/jpeg', filename: '' });
  }
  const urls = new Map<string, string>();
  await Promise.all(targets.map(async (t) => {
    try {
      urls.set(t.key, await storage.presignDownload(t));
    } catch (e) {
      onError(t.key, e);
    }
  }));
  return (key) => urls.get(key) ?? '';
}

/**
 * The storage the configuration asks for: the configured S3; else, outside production with
 * MTCHAT_DEV_S3 on, an in-process development S3; else none (uploads disabled, as the spec says).
 */
export async function openStorage(cfg: Pick<Config, 's3' | 'devS3'>, log: Logger): Promise<{ storage: Storage | null; close(): Promise<void> }> {
  if (cfg.s3) {
    const storage = new Storage(cfg.s3);
    return { storage, close: async () => storage.close() };
  }
  if (cfg.devS3) {
    // Loaded only here, so a production process never loads the fake server.
    const { startDevS3 } = await import('./dev-s3.js');
    const dev = await startDevS3(cfg.devS3);
    log.warn(
      { endpoint: dev.config.endpoint, bucket: dev.config.bucket, directory: dev.directory },
      '*** DEVELOPMENT S3 RUNNING IN-PROCESS *** uploads go to a temporary directory that is DELETED at shutdown; ' +
        'set S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and S3_BUCKET for real storage (MTCHAT_DEV_S3=false turns this off)',
    );
    const storage = new Storage(dev.config);
    return {
      storage,
      async close() {
        storage.close();
        await dev.close();
      },
    };
  }
  log.warn('S3 is not configured: attachment uploads are disabled (presign and attachment URL answer 500, sent attachments get url "")');
  return { storage: null, close: async () => {} };
}
