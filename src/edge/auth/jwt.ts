// Chat API token verification (spec: chat-api.md "User identity" / "User scope",
// configuration.md "Chat API authentication (JWT)" and "Additions").
import { errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { Config } from '../../config/env.js';
import { AppError } from '../../domain/errors.js';
import type { ScopeLevels } from '../../domain/scope.js';

export interface VerifiedToken {
  userId: string;
  /** Scope from the configured claims (JWT_SCOPE_CLAIMS); null when no scope claims are configured. */
  scope: ScopeLevels | null;
  /**
   * Epoch ms from `exp`; null when the token has none, or when expiry validation is off
   * (JWT_VALIDATE_EXP=false: the token then never expires for this service).
   */
  expiresAt: number | null;
}

export type JwtConfig = Pick<
  Config,
  'jwtSecrets' | 'jwtUserIdClaim' | 'jwtValidateExp' | 'jwtLeewaySecs' | 'jwtAudience' | 'jwtIssuer' | 'jwtScopeClaims'
>;

// One answer for every failure, so a client learns nothing about why (and the token is never echoed).
const invalidToken = () => new AppError(401, 'UNAUTHORIZED', 'Invalid token');

export class JwtVerifier {
  private readonly keys: Uint8Array[];
  private readonly options: JWTVerifyOptions;
  private readonly userIdClaim: string;
  private readonly validateTimes: boolean;
  private readonly scopeClaims: readonly [string, string, string] | null;

  constructor(cfg: JwtConfig) {
    const encoder = new TextEncoder();
    this.keys = cfg.jwtSecrets.map((s) => encoder.encode(s));
    this.userIdClaim = cfg.jwtUserIdClaim;
    this.validateTimes = cfg.jwtValidateExp;
    this.scopeClaims = cfg.jwtScopeClaims;
    this.options = {
      algorithms: ['HS256'],
      // Audience / issuer are checked only when configured (a token carrying `aud` is fine otherwise).
      ...(cfg.jwtAudience !== null ? { audience: cfg.jwtAudience } : {}),
      ...(cfg.jwtIssuer !== null ? { issuer: cfg.jwtIssuer } : {}),
      ...(cfg.jwtValidateExp ? { clockTolerance: cfg.jwtLeewaySecs } : {}),
    };
  }

  /** Resolves the verified identity or throws AppError(401, 'UNAUTHORIZED', 'Invalid token'). */
  async verify(token: string): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token.length === 0) throw invalidToken();
    const payload = await this.verifiedPayload(token);
    return {
      userId: this.userId(payload),
      scope: this.scope(payload),
      expiresAt: this.expiresAt(payload),
    };
  }

  /** Signature (first secret that verifies wins), algorithm, payload shape, iss/aud, exp/nbf. */
  private async verifiedPayload(token: string): Promise<JWTPayload> {
    for (const key of this.keys) {
      try {
        const { payload } = await jwtVerify(token, key, this.options);
        return payload;
      } catch (e) {
        // Only a signature mismatch means "maybe another secret": anything else (bad alg,
        // malformed token, failed claim check on a correctly signed token) is final.
        if (e instanceof errors.JWSSignatureVerificationFailed) continue;
        const accepted = this.timeFailureToIgnore(e);
        if (accepted) return accepted;
        throw invalidToken();
      }
    }
    throw invalidToken();
  }

  /**
   * With JWT_VALIDATE_EXP=false the original's behaviour applies: expired and not-yet-valid
   * tokens are accepted. jose always checks exp/nbf when present, so such a failure is caught
   * here. jose raises these only after the signature, the payload shape, iss and aud have
   * passed (nbf, then exp, are the last checks; maxTokenAge is not used), so the payload it
   * carries is fully verified otherwise. A non-numeric exp/nbf stays invalid ("invalid" reason).
   */
  private timeFailureToIgnore(e: unknown): JWTPayload | null {
    if (this.validateTimes) return null;
    if (!(e instanceof errors.JWTExpired || e instanceof errors.JWTClaimValidationFailed)) return null;
    if (e.reason !== 'check_failed' || (e.claim !== 'exp' && e.claim !== 'nbf')) return null;
    const payload = e.payload;
    // After an nbf failure jose has not looked at exp yet: keep the type rule it would apply.
    if (payload.exp !== undefined && typeof payload.exp !== 'number') return null;
    return payload;
  }

  private userId(payload: JWTPayload): string {
    const v: unknown = payload[this.userIdClaim];
    if (typeof v === 'string' && v.length > 0) return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    throw invalidToken();
  }

  private scope(payload: JWTPayload): ScopeLevels | null {
    if (this.scopeClaims === null) return null;
    const [c0, c1, c2] = this.scopeClaims;
    return { scope_level0: stringArray(payload, c0), scope_level1: stringArray(payload, c1), scope_level2: stringArray(payload, c2) };
  }

  private expiresAt(payload: JWTPayload): number | null {
    if (!this.validateTimes) return null;
    const exp = payload.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  }
}

/** An absent claim is no restriction ([]); present, it must be an array of strings. */
function stringArray(payload: JWTPayload, claim: string): string[] {
  if (!Object.hasOwn(payload, claim)) return [];
  const v: unknown = payload[claim];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalidToken();
  return [...(v as string[])];
}
