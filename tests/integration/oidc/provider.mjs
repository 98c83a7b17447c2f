// A real OpenID Provider (panva's oidc-provider 9) for the gatewayd integration tests: it issues
// client_credentials access tokens as JWTs (RFC 9068, typ at+jwt) and serves discovery and JWKS on 127.0.0.1.
// For opaque-token tests it also issues opaque access tokens (resource OP_OPAQUE_RESOURCE), answers RFC 7662
// introspection (/token/introspection, for the confidential client gateway/gateway-secret), RFC 7009 revocation
// (/token/revocation, a client revokes its own tokens) and userinfo (/me) for user tokens that come from
// authorization_code + PKCE with the built-in dev login and consent forms (client gateway-web, any password).
//
// Environment:
//   OP_PORT                 port on 127.0.0.1 (default 4444)
//   OP_TLS_CERT, OP_TLS_KEY PEM files; with both, HTTPS and issuer https://127.0.0.1:PORT
//   OP_KEYS_FILE            JSON array of private signing JWKs, the first one signs; created when missing
//   OP_ALG                  RS256 (default, kid rsa-N) or ES256 (P-256, kid ec-N) for generated keys
//   OP_AUDIENCE             the JWT resource, and so the JWTs' aud (default urn:obsgw; also the default resource)
//   OP_OPAQUE_RESOURCE      the resource whose access tokens are opaque (default urn:opaque; resource=... on /token)
//   OP_TOKEN_TTL            access token lifetime in seconds (default 3600)
//   OP_SSO_REDIRECTS        comma-separated redirect URIs of the client gateway-sso (a gateway's browser sign-in
//                           callback); without it that client is not registered
//
// Key rotation: POST /test/rotate[?drop=1][&alg=ES256] makes a new signing key, puts it first in the JWKS
// (drop=1 also removes every older key), writes OP_KEYS_FILE and answers {"kid": new, "kids": [...]}.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import Provider, { errors } from 'oidc-provider';

const env = process.env;
const PORT = Number(env.OP_PORT || 4444);
const TLS = Boolean(env.OP_TLS_CERT && env.OP_TLS_KEY);
const ISSUER = `${TLS ? 'https' : 'http'}://127.0.0.1:${PORT}`;
const AUDIENCE = env.OP_AUDIENCE || 'urn:obsgw';
const OPAQUE_RESOURCE = env.OP_OPAQUE_RESOURCE || 'urn:opaque';
const WEB_CLIENT = 'gateway-web';
const WEB_REDIRECT = 'http://127.0.0.1/callback'; // never followed: the test client reads the code from Location
const SSO_CLIENT = 'gateway-sso';
const SSO_REDIRECTS = (env.OP_SSO_REDIRECTS || '').split(',').filter(Boolean);
const TOKEN_TTL = Number(env.OP_TOKEN_TTL || 3600);
const DEFAULT_ALG = env.OP_ALG || 'RS256';
const SCOPES = 'logs:write logs:read metrics:write metrics:read traces:write traces:read';
const KID_PREFIX = { RS256: 'rsa', ES256: 'ec' };

if (!KID_PREFIX[DEFAULT_ALG]) throw new Error(`OP_ALG must be RS256 or ES256, not ${DEFAULT_ALG}`);

// client_credentials only: no redirect URIs, secret via HTTP Basic (the default auth method).
const agent = (id, extra) => ({
  client_id: id, client_secret: `${id}-secret`, grant_types: ['client_credentials'],
  redirect_uris: [], response_types: [], ...extra,
});
const CLIENTS = [
  agent('agent-a', { tenant_id: 'tenant-a' }),
  agent('agent-b', { tenant_id: 'tenant-b' }),
  agent('agent-multi', { groups: ['obs-tenant-acme', 'obs-tenant-globex', 'staff'] }),
  // The gateway as an RFC 7662 caller: it only authenticates at /token/introspection.
  { client_id: 'gateway', client_secret: 'gateway-secret', grant_types: [], redirect_uris: [], response_types: [] },
  // A confidential RP whose users log in (authorization_code + PKCE) and get opaque, userinfo-bound tokens.
  { client_id: WEB_CLIENT, client_secret: `${WEB_CLIENT}-secret`, grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'], redirect_uris: [WEB_REDIRECT] },
  // A gateway signing browsers in (authorization_code + PKCE, client_secret_basic); its ID tokens carry only sub
  // (oidc-provider's conformIdTokenClaims), so the email, name and groups come from userinfo.
  ...(SSO_REDIRECTS.length ? [{ client_id: SSO_CLIENT, client_secret: `${SSO_CLIENT}-secret`,
    grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: SSO_REDIRECTS }] : []),
];
// Users of the dev login form (any login name works, any password): login name -> tenant.
const USERS = { alice: 'tenant-a', bob: 'tenant-b' };
// What the email, profile and groups claims say of a user; others get no email.
const PROFILES = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Liddell', groups: ['staff', 'obs-tenant-acme'] },
  bob: { email: 'bob@other.example', email_verified: true, name: 'Bob', groups: ['contractors'] },
  mallory: { email: 'mallory@example.com', email_verified: false, name: 'Mallory', groups: [] },
};
const INTROSPECTORS = new Set(['gateway']);

// kids never repeat, even across restarts with a pruned keys file, so a removed kid stays unknown.
function newKey(alg, keys) {
  if (!KID_PREFIX[alg]) throw new Error(`unsupported alg ${alg}`);
  const serial = 1 + Math.max(0, ...keys.map((k) => Number(String(k.kid).split('-').pop()) || 0));
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `${KID_PREFIX[alg]}-${serial}`, alg, use: 'sig' };
}

function saveKeys(keys) {
  if (env.OP_KEYS_FILE) writeFileSync(env.OP_KEYS_FILE, JSON.stringify(keys, null, 1), { mode: 0o600 });
}

function loadKeys() {
  if (env.OP_KEYS_FILE && existsSync(env.OP_KEYS_FILE)) {
    const keys = JSON.parse(readFileSync(env.OP_KEYS_FILE, 'utf8'));
    // Keys without alg would match any algorithm of their type; the gateway pins them, so say it here too.
    return keys.map((k) => ({ alg: k.kty === 'EC' ? 'ES256' : 'RS256', use: 'sig', ...k }));
  }
  const keys = [newKey(DEFAULT_ALG, [])];
  saveKeys(keys);
  return keys;
}

// oidc-provider 9 has no API to change its keystore, so a rotation builds a new Provider with the new key
// set and the server hands requests to it. JWT access tokens are not stored; opaque tokens, grants and sessions
// are in oidc-provider's memory adapter, which is per process, so they survive a rotation.
function makeProvider(keys) {
  const [signer] = keys;
  return new Provider(ISSUER, {
    jwks: { keys },
    clients: CLIENTS,
    // The default RS256 makes every client invalid when the key set holds no RSA key (OP_ALG=ES256).
    clientDefaults: { id_token_signed_response_alg: signer.alg },
    extraClientMetadata: { properties: ['tenant_id', 'groups'] },
    cookies: { keys: ['obsgw-test-cookie-key'] },
    ttl: { ClientCredentials: TOKEN_TTL },
    // userinfo (and the id_token) carry the user's tenant_id with the openid scope.
    claims: { openid: ['sub', 'tenant_id', 'groups'], email: ['email', 'email_verified'], profile: ['name'] },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        claims: () => ({ sub, ...(USERS[sub] && { tenant_id: USERS[sub] }), ...PROFILES[sub] }),
      };
    },
    features: {
      // The built-in login and consent forms at /interaction/:uid, for user logins without a browser.
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only the gateway, and a client asking about its own token, learn anything (else active: false).
        allowedPolicy: (ctx, client, token) => INTROSPECTORS.has(client.clientId) || client.clientId === token.clientId,
      },
      revocation: { enabled: true, allowedPolicy: (ctx, client, token) => client.clientId === token.clientId },
      // JWT access tokens exist only through resource indicators; without them tokens are opaque. Machine
      // clients get urn:obsgw unless they ask for another resource; gateway-web's users get no resource, so
      // their (opaque) access tokens are the ones /me accepts.
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => ([WEB_CLIENT, SSO_CLIENT].includes(client?.clientId) ? oneOf : AUDIENCE),
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resource) {
          if (resource === OPAQUE_RESOURCE) {
            return { scope: SCOPES, audience: OPAQUE_RESOURCE, accessTokenFormat: 'opaque' };
          }
          if (resource !== AUDIENCE) throw new errors.InvalidTarget();
          return {
            scope: SCOPES, audience: AUDIENCE,
            accessTokenFormat: 'jwt', jwt: { sign: { alg: signer.alg, kid: signer.kid } },
          };
        },
      },
    },
    // Extra claims go into JWT access tokens and into the introspection answer for opaque ones.
    extraTokenClaims(ctx, token) {
      if (token.kind === 'AccessToken' && USERS[token.accountId]) return { tenant_id: USERS[token.accountId] };
      if (token.kind !== 'ClientCredentials') return undefined;
      const { tenant_id, groups } = ctx.oidc.client;
      return { ...(tenant_id && { tenant_id }), ...(groups && { groups }) };
    },
  });
}

let keys = loadKeys();
let dispatch = makeProvider(keys).callback();

function rotate(req, res) {
  const query = new URL(req.url, ISSUER).searchParams;
  try {
    const key = newKey(query.get('alg') || keys[0].alg, keys);
    const next = [key, ...(query.get('drop') === '1' ? [] : keys)];
    dispatch = makeProvider(next).callback();
    keys = next;
    saveKeys(keys);
    console.log(`OP rotated: signing kid ${key.kid}, jwks ${keys.map((k) => k.kid).join(' ')}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: key.kid, kids: keys.map((k) => k.kid) }));
  } catch (err) {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: String(err.message || err) }));
  }
}

function handle(req, res) {
  if (req.method === 'POST' && new URL(req.url, ISSUER).pathname === '/test/rotate') return rotate(req, res);
  return dispatch(req, res);
}

// Koa sees req.socket.encrypted under node:https, so the endpoint URLs in discovery come out as https
// without provider.proxy (which is only for X-Forwarded-Proto behind a TLS-terminating proxy).
const server = TLS
  ? https.createServer({ cert: readFileSync(env.OP_TLS_CERT), key: readFileSync(env.OP_TLS_KEY) }, handle)
  : http.createServer(handle);

server.listen(PORT, '127.0.0.1', () => console.log(`OP listening ${ISSUER} pid=${process.pid}`));

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // keep-alive clients would hold close() open
  });
}
