// The identity provider of the end-to-end bed: oidc-provider (a certified
// OpenID Provider) with one confidential client and an interaction that
// signs the test user in and grants consent without a login form, so a
// scripted browser can complete logins.
//
// Environment:
//   IDP_PORT       port to listen on (0: any; the chosen port is printed)
//   TLS_KEY/TLS_CERT  key and certificate for https (SAN IP:127.0.0.1)
//   REDIRECT_URIS  space-separated redirect URIs registered for client "app"
//   CLIENT_SECRET  the client's secret
//
// Prints "idp listening <port>" once it accepts connections.

import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';
import { setStorage } from 'oidc-provider/lib/adapters/memory_adapter.js';

// oidc-provider's development store keeps the last 1000 entries only (an
// LRU): a login makes about six (session, interactions, code, grant...), so
// past ~160 users the oldest IdP sessions vanish and prompt=none answers
// login_required. The load scenario has hundreds: keep everything for the
// life of the process (a test or the demo).
setStorage(new Map());

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) {
    console.error(`idp: ${name} is not set`);
    process.exit(2);
  }
  return v;
};

const tls = { key: readFileSync(env('TLS_KEY')), cert: readFileSync(env('TLS_CERT')) };
const server = https.createServer(tls);

server.listen(Number(env('IDP_PORT')), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'app',
      client_secret: env('CLIENT_SECRET'),
      redirect_uris: env('REDIRECT_URIS').split(' ').filter(Boolean),
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    // Users: any account id is a user; its name is derived from it.
    async findAccount(ctx, id) {
      return { accountId: id, async claims() { return { sub: id, name: `Test user ${id}` }; } };
    },
    claims: { openid: ['sub'], profile: ['name'] },
    cookies: { keys: ['e2e-idp-cookie-key-not-secret-0123456789'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // Errors the browser sees (say, an unregistered redirect_uri) as one
    // plain line, so tests and the demo can show them.
    async renderError(ctx, out) {
      ctx.type = 'text/plain';
      ctx.body = `${out.error}: ${out.error_description}`;
    },
  });
  provider.on('server_error', (ctx, err) => console.error('idp server_error', err));

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    if (!req.url.startsWith('/interaction/')) {
      callback(req, res);
      return;
    }
    try {
      await interact(provider, req, res);
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err.message}`);
    }
  });
  console.log(`idp listening ${port}`);
});

// Login: the user named by login_hint (default "alice") signs in at once.
// Consent: everything the client asked for is granted and remembered, so a
// later prompt=none request succeeds silently.
async function interact(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    const accountId = params.login_hint || 'alice';
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  throw new Error(`unexpected prompt ${prompt.name}`);
}
