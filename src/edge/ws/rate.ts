// Per-socket token bucket for client frames (docs/protocol.md "Rate limit").

export class TokenBucket {
  private tokens: number;
  private at: number;
  /** Frames refused in a row; reset by an accepted frame. */
  strikes = 0;

  constructor(private readonly perSec: number, private readonly burst: number, private readonly now: () => number = performance.now.bind(performance)) {
    this.tokens = burst;
    this.at = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) / 1000) * this.perSec);
    this.at = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.strikes = 0;
      return true;
    }
    this.strikes++;
    return false;
  }
}
