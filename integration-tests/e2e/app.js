// The relying party of the end-to-end bed, written the way real apps are:
// Express with express-session's default in-memory store (so a session
// lives on one node only) and openid-client doing authorization code +
// PKCE + nonce, with the redirect_uri built from the request it received
// ("trust proxy": protocol and host from X-Forwarded-*).
//
// Environment:
//   NODE_NAME      this node's name, sent as x-app-node on every response
//   PORT           port to listen on (0: any; the chosen port is printed)
//   ISSUER         the IdP's issuer URL (trusted via NODE_EXTRA_CA_CERTS)
//   CLIENT_SECRET  the secret of client "app"
//   SESSION_SAMESITE  the session cookie's SameSite (default lax)
//
// Routes: /login[?prompt=none][&response_mode=form_post][&user=name] starts
// a login, /callback (GET, or POST for form_post) finishes it, /me
// shows who is logged in (401 if nobody), /logout forgets the session,
// /events streams server-sent events, /poll?ms=N answers after N ms, /ws is
// a WebSocket echo for logged-in users.
//
// Prints "app listening <port>" once it accepts connections.

import http from 'node:http';
import express from 'express';
import session from 'express-session';
import * as oidc from 'openid-client';
import { WebSocketServer } from 'ws';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) {
    console.error(`app: ${name} is not set`);
    process.exit(2);
  }
  return v;
};
const node = env('NODE_NAME');
const secret = env('CLIENT_SECRET');
const config = await oidc.discovery(new URL(env('ISSUER')), 'app', secret);

const app = express();
// Behind a proxy, as deployed: believe X-Forwarded-Proto/Host/For.
app.set('trust proxy', true);
app.use((req, res, next) => {
  res.set('x-app-node', node);
  next();
});
const sessions = session({
  secret: 'e2e-session-secret',
  resave: false,
  saveUninitialized: false,
  // Secure cookies: express-session only sets them when the request
  // arrived over https, as X-Forwarded-Proto says. Apps using
  // response_mode=form_post need SameSite=None: the IdP's POST back is
  // cross-site.
  cookie: { secure: true, httpOnly: true, sameSite: process.env.SESSION_SAMESITE || 'lax' },
});
app.use(sessions);

const fail = (res, status, why) => res.status(status).type('text/plain').send(`${why} (node ${node})\n`);

app.get('/login', async (req, res) => {
  const redirect_uri = `${req.protocol}://${req.host}/callback`;
  const code_verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const params = {
    redirect_uri,
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  if (req.query.prompt === 'none') params.prompt = 'none';
  if (req.query.response_mode === 'form_post') params.response_mode = 'form_post';
  if (typeof req.query.user === 'string') params.login_hint = req.query.user;
  // Where to go after the login: a local path only.
  const next = typeof req.query.next === 'string' && /^\/[^/\\]/.test(req.query.next) ? req.query.next : '/me';
  req.session.login = { code_verifier, state, nonce, redirect_uri, node, next };
  res.redirect(oidc.buildAuthorizationUrl(config, params).href);
});

// The IdP's answer: a GET with the parameters in the query, or (form_post)
// a POST with them in the body.
const finishLogin = async (req, res) => {
  const login = req.session.login;
  if (!login) return fail(res, 400, 'login failed: no login in progress in this session');
  delete req.session.login;
  try {
    const url = new URL(req.originalUrl, login.redirect_uri);
    const response = req.method === 'POST'
      ? new Request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(req.body).toString(),
      })
      : url;
    const tokens = await oidc.authorizationCodeGrant(
      config,
      response,
      { pkceCodeVerifier: login.code_verifier, expectedState: login.state, expectedNonce: login.nonce, idTokenExpected: true },
      { redirect_uri: login.redirect_uri },
    );
    const claims = tokens.claims();
    req.session.user = { sub: claims.sub, name: claims.name, login_node: login.node, callback_node: node };
    res.redirect(login.next || '/me');
  } catch (err) {
    const why = err.error ? `${err.error}${err.error_description ? `: ${err.error_description}` : ''}` : err.message;
    fail(res, 401, `login failed: ${why}`);
  }
};
app.get('/callback', finishLogin);
app.post('/callback', express.urlencoded({ extended: false }), finishLogin);

app.get('/me', (req, res) => {
  if (!req.session.user) return fail(res, 401, 'not logged in');
  res.json({ ...req.session.user, node });
});

// Silent re-authentication as single-page apps do it: a hidden iframe runs
// /login?prompt=none; when it lands (on /me, or on an error), the page
// copies what the iframe shows into #result.
app.get('/silent', (req, res) => {
  res.type('html').send(`<!DOCTYPE html>
<html><body><pre id="result">pending</pre>
<iframe id="frame" src="/login?prompt=none" style="display:none"></iframe>
<script>
document.getElementById('frame').addEventListener('load', (e) => {
  let text;
  try { text = e.target.contentDocument.body.innerText; } catch (err) { text = 'cross-origin: ' + err.message; }
  document.getElementById('result').textContent = text;
});
</script></body></html>`);
});

// An app that builds an absolute URL from its own socket (no proxy
// awareness), as some frameworks do for redirects: the Location names this
// node's internal address.
app.get('/internal-redirect', (req, res) => {
  const { localAddress, localPort } = req.socket;
  res.redirect(`http://${localAddress}:${localPort}/me?from=internal&x=a%2Fb`);
});

app.get('/logout', (req, res) => {
  req.session.destroy(() => res.type('text/plain').send(`logged out (node ${node})\n`));
});

// Server-sent events: n events, one every ms milliseconds.
app.get('/events', (req, res) => {
  const n = Number(req.query.n ?? 5);
  const ms = Number(req.query.ms ?? 500);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let i = 0;
  const tick = () => {
    res.write(`data: event ${i} from ${node}\n\n`);
    i += 1;
    if (i >= n) res.end();
    else timer = setTimeout(tick, ms);
  };
  let timer = setTimeout(tick, ms);
  req.on('close', () => clearTimeout(timer));
});

// A long poll: the answer comes after ms milliseconds of silence.
app.get('/poll', (req, res) => {
  const timer = setTimeout(() => res.type('text/plain').send(`poll answered by ${node}\n`), Number(req.query.ms ?? 1000));
  req.on('close', () => clearTimeout(timer));
});

const server = app.listen(Number(env('PORT')), '127.0.0.1', () => {
  console.log(`app listening ${server.address().port}`);
});

// WebSocket echo, for logged-in users only: the upgrade request must reach
// the node that holds the session.
const wss = new WebSocketServer({ noServer: true });
wss.on('headers', (headers) => headers.push(`x-app-node: ${node}`));
server.on('upgrade', (req, socket, head) => {
  // express-session needs a response to hook; this one is never sent.
  const res = new http.ServerResponse(req);
  sessions(req, res, () => {
    if (!req.url.startsWith('/ws') || !req.session?.user) {
      socket.end(`HTTP/1.1 401 Unauthorized\r\nx-app-node: ${node}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    const user = req.session.user.sub;
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data) => ws.send(`${node} echoes to ${user}: ${data}`));
    });
  });
});
