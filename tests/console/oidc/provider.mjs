#!/usr/bin/env node
// Local OpenID Provider for lienthong console tests.
//
// Usage:
//   node oidc/provider.mjs CONFIG.json [--port N] [--host 127.0.0.1]
// Env: OIDC_PORT, OIDC_HOST override the config file; argv overrides env.
// Port 0 (the default) binds any free port.
//
// On success prints exactly one JSON line on stdout, e.g.
//   {"issuer":"http://127.0.0.1:41234","port":41234,"pid":1234}
// Everything else (warnings, request log) goes to stderr.
//
// See NOTES.md for the config file format and the login form's fields.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const STANDARD_PROFILE_CLAIMS = [
  'name', 'family_name', 'given_name', 'middle_name', 'nickname',
  'preferred_username', 'profile', 'picture', 'website', 'gender',
  'birthdate', 'zoneinfo', 'locale', 'updated_at',
];
const EMAIL_CLAIMS = ['email', 'email_verified'];
// Claims that the provider itself sets; users may not override them.
const RESERVED_CLAIMS = new Set(['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'auth_time', 'acr', 'amr', 'azp', 'sid', 'at_hash', 'c_hash']);

function fail(msg) {
  process.stderr.write(`provider: ${msg}\n`);
  process.exit(2);
}

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function positiveInt(value, what) {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) fail(`${what} must be a positive integer (seconds), got ${JSON.stringify(value)}`);
  return n;
}

// ---------------------------------------------------------------- arguments

const { values: argv, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    config: { type: 'string' },
  },
});

const configPath = argv.config ?? positionals[0] ?? process.env.OIDC_CONFIG;
if (!configPath) fail('usage: provider.mjs CONFIG.json [--port N] [--host 127.0.0.1]');

let config;
try {
  config = JSON.parse(readFileSync(configPath, 'utf8'));
} catch (err) {
  fail(`cannot read config ${configPath}: ${err.message}`);
}

const host = argv.host ?? process.env.OIDC_HOST ?? config.host ?? '127.0.0.1';
const portRaw = argv.port ?? process.env.OIDC_PORT ?? config.port ?? 0;
const port = Number(portRaw);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port ${portRaw}`);
if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== 'localhost' && host !== '::1') {
  fail(`host must be a loopback address, got ${host}`);
}

// ---------------------------------------------------------------- users

if (!Array.isArray(config.users) || config.users.length === 0) fail('config.users must be a non-empty array');
if (!Array.isArray(config.clients) || config.clients.length === 0) fail('config.clients must be a non-empty array');

const usersByLogin = new Map();
const usersBySub = new Map();
for (const u of config.users) {
  if (!u.login || typeof u.password !== 'string') fail('each user needs "login" and "password"');
  const sub = String(u.sub ?? u.login);
  const claims = { ...(u.claims ?? {}) };
  for (const k of Object.keys(claims)) {
    if (RESERVED_CLAIMS.has(k)) fail(`user ${u.login}: claim "${k}" is reserved`);
  }
  const user = {
    login: String(u.login),
    password: u.password,
    sub,
    claims,
    sessionTtl: u.session_ttl === undefined ? undefined : positiveInt(u.session_ttl, `users[${u.login}].session_ttl`),
  };
  if (usersByLogin.has(user.login)) fail(`duplicate login ${user.login}`);
  usersByLogin.set(user.login, user);
  usersBySub.set(sub, user);
}

// Which claims each scope releases. Default: "profile" releases the standard
// profile claims plus every non-standard claim found on any user (agency,
// role, ...), so `scope=openid profile` yields them in the ID token.
function buildClaimsConfig() {
  if (config.scope_claims) {
    return { openid: ['sub'], ...config.scope_claims };
  }
  const custom = new Set();
  for (const u of usersByLogin.values()) {
    for (const k of Object.keys(u.claims)) {
      if (!STANDARD_PROFILE_CLAIMS.includes(k) && !EMAIL_CLAIMS.includes(k)) custom.add(k);
    }
  }
  return {
    openid: ['sub'],
    profile: [...STANDARD_PROFILE_CLAIMS, ...custom],
    email: EMAIL_CLAIMS,
  };
}
const claimsConfig = buildClaimsConfig();

// ---------------------------------------------------------------- TTLs

const ttlIn = config.ttl ?? {};
const ttlSeconds = {
  session: positiveInt(ttlIn.session ?? 3600, 'ttl.session'),
  id_token: positiveInt(ttlIn.id_token ?? 600, 'ttl.id_token'),
  access_token: positiveInt(ttlIn.access_token ?? 600, 'ttl.access_token'),
  authorization_code: positiveInt(ttlIn.authorization_code ?? 60, 'ttl.authorization_code'),
  interaction: positiveInt(ttlIn.interaction ?? 600, 'ttl.interaction'),
  grant: positiveInt(ttlIn.grant ?? 3600, 'ttl.grant'),
  refresh_token: positiveInt(ttlIn.refresh_token ?? 3600, 'ttl.refresh_token'),
};

// ---------------------------------------------------------------- keys

function makeJwks() {
  if (config.jwks) return config.jwks; // caller-supplied private JWKS (stable keys)
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = crypto.createHash('sha256').update(jwk.n).digest('base64url').slice(0, 16);
  return { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] };
}

// ---------------------------------------------------------------- HTML

const PAGE_CSS = `
body{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;background:#f4f6f8;color:#1a1a1a;margin:0;padding:40px 16px}
main{max-width:380px;margin:0 auto;background:#fff;border:1px solid #c8cdd2;border-radius:6px;padding:24px 28px}
h1{font-size:1.4rem;margin:0 0 16px}
label{display:block;font-weight:600;margin:12px 0 4px}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:8px;font-size:1rem;border:1px solid #6b7280;border-radius:4px}
button{margin-top:18px;padding:9px 18px;font-size:1rem;border:0;border-radius:4px;background:#0b5cad;color:#fff;cursor:pointer}
button.secondary{background:#e5e7eb;color:#111}
.error{background:#fdecec;color:#8a1111;border:1px solid #e7a3a3;padding:8px;border-radius:4px}
.client{color:#374151;font-size:.9rem}
`;

function page(title, body, { script } = {}) {
  return `<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
${body}
</main>
${script ? `<script>${script}</script>` : ''}
</body>
</html>`;
}

function loginPage({ action, clientId, loginValue, error }) {
  return page('Đăng nhập', `
<h1>Đăng nhập</h1>
<p class="client">Ứng dụng: <span id="client-id">${escapeHtml(clientId)}</span></p>
${error ? `<p class="error" id="login-error" role="alert">${escapeHtml(error)}</p>` : ''}
<form id="login-form" method="post" action="${escapeHtml(action)}" autocomplete="off">
  <label for="login">Tên đăng nhập</label>
  <input id="login" name="login" type="text" required value="${escapeHtml(loginValue ?? '')}" autofocus>
  <label for="password">Mật khẩu</label>
  <input id="password" name="password" type="password" required>
  <button id="login-submit" type="submit">Đăng nhập</button>
</form>`);
}

// ---------------------------------------------------------------- provider

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, host, resolve);
});
const boundPort = server.address().port;
const hostForUrl = host.includes(':') ? `[${host}]` : host;
const issuer = `http://${hostForUrl}:${boundPort}`;

const cookiePrefix = config.cookie_prefix ?? 'op';
const autoConfirmLogout = Boolean(config.logout?.auto_confirm);

const providerConfig = {
  clients: config.clients.map((c) => {
    if (!c.client_id) fail('each client needs client_id');
    return {
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
      grant_types: c.grant_types ?? ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method
        ?? (c.client_secret ? 'client_secret_basic' : 'none'),
      id_token_signed_response_alg: c.id_token_signed_response_alg ?? 'RS256',
      ...(c.client_name ? { client_name: c.client_name } : {}),
    };
  }),
  jwks: makeJwks(),
  cookies: {
    keys: [crypto.randomBytes(32).toString('base64url')],
    // Browsers share cookies between ports of the same host, so prefix the
    // OP's cookies: they must not clash with the console's own cookies when
    // both run on 127.0.0.1.
    names: {
      session: `${cookiePrefix}_session`,
      interaction: `${cookiePrefix}_interaction`,
      resume: `${cookiePrefix}_interaction_resume`,
    },
  },
  claims: claimsConfig,
  responseTypes: ['code'],
  scopes: ['openid', 'offline_access', ...Object.keys(claimsConfig).filter((s) => s !== 'openid')],
  // Put scope-released claims (agency, role, name...) into the ID token too,
  // not only into the userinfo response.
  conformIdTokenClaims: false,
  clockTolerance: config.clock_tolerance ?? 15,
  pkce: {
    // PKCE for every client and every authorization request; only S256
    // exists in this oidc-provider major.
    required: () => true,
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        // `form` is <form id="op.logoutForm" ...> with the hidden xsrf input.
        ctx.type = 'html';
        ctx.body = page('Đăng xuất', `
<h1>Đăng xuất</h1>
<p>Bạn có muốn đăng xuất khỏi máy chủ định danh?</p>
${form}
<button id="logout-confirm" type="submit" form="op.logoutForm" name="logout" value="yes">Đăng xuất</button>
<button id="logout-cancel" class="secondary" type="submit" form="op.logoutForm">Ở lại</button>`,
        autoConfirmLogout ? {
          script: "document.getElementById('logout-confirm').click();",
        } : {});
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Đã đăng xuất', '<h1 id="logged-out">Đã đăng xuất</h1><p>Phiên đăng nhập đã kết thúc.</p>');
      },
    },
    userinfo: { enabled: true },
    revocation: { enabled: true },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const rows = Object.entries(out)
      .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd id="error-${escapeHtml(k)}">${escapeHtml(v)}</dd>`).join('');
    ctx.body = page('Lỗi', `<h1>Lỗi</h1><dl>${rows}</dl>`);
  },
  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  async findAccount(ctx, sub) {
    const user = usersBySub.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, ...user.claims };
      },
    };
  },
  ttl: {
    Session(ctx, session) {
      const user = session?.accountId ? usersBySub.get(session.accountId) : undefined;
      return user?.sessionTtl ?? ttlSeconds.session;
    },
    IdToken: ttlSeconds.id_token,
    AccessToken: ttlSeconds.access_token,
    AuthorizationCode: ttlSeconds.authorization_code,
    Interaction: ttlSeconds.interaction,
    Grant: ttlSeconds.grant,
    RefreshToken: ttlSeconds.refresh_token,
  },
};

for (const c of providerConfig.clients) {
  // oidc-provider only checks static clients when one is first used (and
  // then answers 400 invalid_client_metadata); check the usual mistake here.
  for (const k of ['client_id', 'client_secret']) {
    if (c[k] !== undefined && (typeof c[k] !== 'string' || /[^\x20-\x7E]/.test(c[k]))) {
      fail(`client ${c.client_id}: ${k} must be printable ASCII`);
    }
  }
}

const provider = new Provider(issuer, providerConfig);

// Load every static client once so a bad redirect_uri etc. fails at startup.
for (const c of providerConfig.clients) {
  try {
    await provider.Client.find(c.client_id);
  } catch (err) {
    fail(`client ${c.client_id}: ${err.error_description ?? err.message}`);
  }
}

provider.on('server_error', (ctx, err) => {
  process.stderr.write(`provider: server_error ${err?.stack ?? err}\n`);
});
if (process.env.OIDC_DEBUG) {
  for (const ev of ['grant.success', 'grant.error', 'authorization.error', 'end_session.success', 'end_session.error']) {
    provider.on(ev, (_ctx, err) => process.stderr.write(`provider: ${ev}${err?.message ? ` ${err.message}` : ''}\n`));
  }
}

// ---------------------------------------------------------------- interactions

function readForm(req, limit = 16 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(html);
}

// Consent is implicit for the configured (first-party) clients: grant every
// requested scope/claim and continue without showing a consent page.
async function grantConsent(req, res, details) {
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const d = prompt.details;
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  if (d.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const newGrantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId: newGrantId } }, { mergeWithLastSubmission: true });
}

async function handleInteraction(req, res, uid) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    sendHtml(res, 400, page('Lỗi', `<h1>Lỗi</h1><p id="error-description">Phiên đăng nhập không hợp lệ hoặc đã hết hạn (${escapeHtml(err.message)}).</p>`));
    return;
  }
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Lỗi', '<h1>Lỗi</h1><p id="error-description">Sai mã phiên tương tác.</p>'));
    return;
  }
  const action = `/interaction/${encodeURIComponent(uid)}`;
  const clientId = details.params.client_id;

  if (details.prompt.name === 'consent') {
    await grantConsent(req, res, details);
    return;
  }
  if (details.prompt.name !== 'login') {
    sendHtml(res, 501, page('Lỗi', `<h1>Lỗi</h1><p>Không hỗ trợ bước ${escapeHtml(details.prompt.name)}.</p>`));
    return;
  }

  if (req.method === 'GET') {
    sendHtml(res, 200, loginPage({ action, clientId, loginValue: details.params.login_hint }));
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { Allow: 'GET, POST' }).end();
    return;
  }

  const form = await readForm(req);
  const login = form.get('login') ?? '';
  const password = form.get('password') ?? '';
  const user = usersByLogin.get(login);
  const ok = user
    && crypto.timingSafeEqual(
      crypto.createHash('sha256').update(password).digest(),
      crypto.createHash('sha256').update(user.password).digest(),
    );
  if (!ok) {
    sendHtml(res, 401, loginPage({
      action, clientId, loginValue: login, error: 'Sai tên đăng nhập hoặc mật khẩu.',
    }));
    return;
  }
  // Grant the requested OpenID scopes right away, so the browser goes
  // straight back to /auth/:uid and on to the redirect_uri (no second
  // interaction for consent). Anything still missing is auto-granted by the
  // consent branch above.
  const grant = new provider.Grant({ accountId: user.sub, clientId });
  const requested = String(details.params.scope ?? '').split(' ').filter((sc) => providerConfig.scopes.includes(sc));
  if (requested.length) grant.addOIDCScope(requested.join(' '));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId: user.sub, amr: ['pwd'], remember: true },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

const providerCallback = provider.callback();

server.on('request', (req, res) => {
  const url = new URL(req.url, issuer);
  const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
  if (process.env.OIDC_DEBUG) process.stderr.write(`provider: ${req.method} ${url.pathname}\n`);
  if (m) {
    handleInteraction(req, res, m[1]).catch((err) => {
      process.stderr.write(`provider: interaction error ${err.stack}\n`);
      if (!res.headersSent) sendHtml(res, 500, page('Lỗi', '<h1>Lỗi máy chủ</h1>'));
      else res.end();
    });
    return;
  }
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    return;
  }
  providerCallback(req, res);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Exit when the parent closes our stdin (e.g. a Rust test harness dropping
// the child's stdin pipe) -- only if stdin is a pipe.
if (process.env.OIDC_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({ issuer, port: boundPort, pid: process.pid })}\n`);
