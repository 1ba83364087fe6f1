// A throw-away S3 for development and tests: @20minutes/s3rver in this process, on loopback, in a
// temp directory. It verifies SigV4, so tampered or mis-typed presigned URLs fail as on real S3.
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Config } from './storage.js';

export interface DevS3Options {
  bucket?: string;
  uploadExpirySecs?: number;
  downloadExpirySecs?: number;
}

export interface DevS3 {
  /** Storage settings pointing at this server. */
  config: S3Config;
  directory: string;
  /** Calls `fn` for every HTTP request the server receives; returns the unsubscribe function. */
  onRequest(fn: (method: string, url: string) => void): () => void;
  /** Stops the server and deletes every stored object. */
  close(): Promise<void>;
}

// The server's only account; its keys are public knowledge, which is fine on loopback.
const DEV_KEY = 'S3RVER';

export async function startDevS3(o: DevS3Options = {}): Promise<DevS3> {
  const bucket = o.bucket ?? 'mtchat-dev';
  const directory = await mkdtemp(join(tmpdir(), 'mtchat-dev-s3-'));
  // CommonJS, untyped, and only loaded when a development S3 is wanted.
  const S3rver = createRequire(import.meta.url)('@20minutes/s3rver');
  // The bucket is made through configureBuckets: the SDK signs CreateBucket for `/bucket/` while this
  // server canonicalises `/bucket`, so an API CreateBucket would fail signature verification.
  const server = new S3rver({
    address: '127.0.0.1', port: 0, silent: true, directory, resetOnClose: false,
    vhostBuckets: false, configureBuckets: [{ name: bucket }],
  });
  let addr: { port: number };
  try {
    addr = await server.run();
  } catch (e) {
    await rm(directory, { recursive: true, force: true });
    throw e;
  }
  const http = server.httpServer as Server;
  const endpoint = `http://127.0.0.1:${addr.port}`;
  return {
    config: {
      endpoint, publicEndpoint: endpoint, region: 'us-east-1', accessKeyId: DEV_KEY, secretAccessKey: DEV_KEY, bucket,
      uploadExpirySecs: o.uploadExpirySecs ?? 300, downloadExpirySecs: o.downloadExpirySecs ?? 3600,
    },
    directory,
    onRequest(fn) {
      const listener = (req: { method?: string; url?: string }) => fn(req.method ?? '', req.url ?? '');
      http.on('request', listener);
      return () => {
        http.off('request', listener);
      };
    },
    async close() {
      const closed = server.close();
      http.closeAllConnections();
      await closed;
      await rm(directory, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
