// The WebSocket edge's metrics (src/observability/metrics.ts). Labelled children are resolved
// once, so counting a frame on the hot path is a plain increment. Without a registry (edges built
// by tests) every call is a no-op.
import type { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../../observability/metrics.js';
import type { WireFormat } from './codec.js';

interface PerFormat {
  open: Gauge.Internal<'format'>;
  framesIn: Counter.Internal;
  bytesIn: Counter.Internal;
  framesOut: Counter.Internal;
  bytesOut: Counter.Internal;
}

export class WsMeter {
  private readonly f: Record<WireFormat, PerFormat> | null;

  constructor(private readonly m: Metrics | null) {
    const per = (m: Metrics, format: WireFormat): PerFormat => ({
      open: m.wsConnections.labels({ format }),
      framesIn: m.wsFrames.labels({ direction: 'in', format }),
      bytesIn: m.wsBytes.labels({ direction: 'in', format }),
      framesOut: m.wsFrames.labels({ direction: 'out', format }),
      bytesOut: m.wsBytes.labels({ direction: 'out', format }),
    });
    this.f = m ? { json: per(m, 'json'), msgpack: per(m, 'msgpack') } : null;
  }

  opened(format: WireFormat): void {
    this.f?.[format].open.inc();
  }

  closed(format: WireFormat): void {
    this.f?.[format].open.dec();
  }

  frameIn(format: WireFormat, bytes: number): void {
    if (!this.f) return;
    this.f[format].framesIn.inc();
    this.f[format].bytesIn.inc(bytes);
  }

  /** `count` sockets were each written the same `bytes` (a topic publish reaches every subscriber). */
  frameOut(format: WireFormat, bytes: number, count = 1): void {
    if (!this.f || count <= 0) return;
    this.f[format].framesOut.inc(count);
    this.f[format].bytesOut.inc(bytes * count);
  }

  slowConsumer(): void {
    this.m?.slowConsumerDisconnects.inc();
  }

  rateLimited(): void {
    this.m?.rateLimitRejections.inc({ transport: 'ws' });
  }

  resumeRequested(): void {
    this.m?.resumeRequests.inc();
  }

  resyncRequired(): void {
    this.m?.resyncRequired.inc();
  }

  /** A `send` frame received at `receivedAt` (performance.now()) was acked after its commit. */
  sendAcked(receivedAt: number): void {
    this.m?.sendLatency.observe((performance.now() - receivedAt) / 1000);
  }

  /** An event committed at `committedAt` (epoch ms, from the worker) was published to the sockets. */
  delivered(committedAt: number): void {
    this.m?.deliveryLatency.observe(Math.max(0, Date.now() - committedAt) / 1000);
  }
}
