# The bed's second relying party, from another ecosystem than app.js:
# Flask with Authlib's Flask client (authorization code + PKCE + nonce,
# the endpoints from the IdP's discovery document), behind werkzeug's
# ProxyFix as Flask's docs configure it for one proxy in front, and with
# server-side sessions kept in this process's memory: the cookie carries
# only a random session id, and Authlib's per-login state (state, nonce,
# PKCE verifier, redirect_uri) lives in the session. So a login's callback
# must reach the node that started it, and a session exists on one node
# only, as with app.js's express-session.
#
# Environment:
#   NODE_NAME      this node's name, sent as x-app-node on every response
#   PORT           port to listen on (0: any; the chosen port is printed)
#   ISSUER         the IdP's issuer URL
#   CLIENT_SECRET  the secret of client "app"
#   REQUESTS_CA_BUNDLE  the CA that signed the IdP's certificate (read by
#                  requests, Authlib's HTTP client)
#   SESSION_SAMESITE  the session cookie's SameSite (default lax)
#
# Routes (as app.js): /login[?prompt=none][&response_mode=form_post]
# [&user=name][&next=/path] starts a login, /callback (GET, or POST for
# form_post) finishes it, /me shows who is logged in (401 if nobody),
# /logout forgets the session, /internal-redirect redirects to this
# node's own socket address.
#
# Prints "app listening <port>" once it accepts connections.

import os
import re
import secrets
import sys
import threading

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, jsonify, make_response, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import make_server


def env(name):
    value = os.environ.get(name)
    if value is None:
        print(f"app: {name} is not set", file=sys.stderr)
        sys.exit(2)
    return value


class ServerSession(SecureCookieSession):
    """A session whose data stays on the server, found by `sid`."""

    def __init__(self, initial=None, sid=None):
        super().__init__(initial)
        self.sid = sid


class MemorySessions(SessionInterface):
    """Sessions in this process's memory; the cookie holds a random id only.

    An id this node does not know opens an empty session, as after a
    restart: the data never leaves the node.
    """

    def __init__(self):
        self.store = {}
        self.lock = threading.Lock()

    def open_session(self, app, request):
        sid = request.cookies.get(self.get_cookie_name(app))
        with self.lock:
            data = self.store.get(sid) if sid else None
        if data is None:
            return ServerSession()
        return ServerSession(data, sid=sid)

    def save_session(self, app, session, response):
        name = self.get_cookie_name(app)
        if not session:
            if session.sid is not None:
                with self.lock:
                    self.store.pop(session.sid, None)
                response.delete_cookie(name, path=self.get_cookie_path(app))
            return
        if not session.modified and session.sid is not None:
            return
        new = session.sid is None or getattr(session, "renew", False)
        if new:
            with self.lock:
                if session.sid is not None:
                    self.store.pop(session.sid, None)
            session.sid = secrets.token_urlsafe(32)
        with self.lock:
            self.store[session.sid] = dict(session)
        if new:
            response.set_cookie(
                name,
                session.sid,
                path=self.get_cookie_path(app),
                secure=self.get_cookie_secure(app),
                httponly=self.get_cookie_httponly(app),
                samesite=self.get_cookie_samesite(app),
            )


node = env("NODE_NAME")
app = Flask(__name__)
# Behind one proxy (oidc-edge's Envoy, or the LB), as Flask's deployment
# docs configure it: scheme and host from X-Forwarded-Proto/-Host.
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)
app.session_interface = MemorySessions()
app.config.update(
    SESSION_COOKIE_SECURE=True,
    SESSION_COOKIE_HTTPONLY=True,
    # Apps using response_mode=form_post need SameSite=None: the IdP's
    # POST back is cross-site.
    SESSION_COOKIE_SAMESITE=os.environ.get("SESSION_SAMESITE", "lax").capitalize(),
)

oauth = OAuth(app)
oauth.register(
    "idp",
    client_id="app",
    client_secret=env("CLIENT_SECRET"),
    server_metadata_url=env("ISSUER").rstrip("/") + "/.well-known/openid-configuration",
    client_kwargs={"scope": "openid profile", "code_challenge_method": "S256"},
)


def fail(status, why):
    return make_response((f"{why} (node {node})\n", status, {"content-type": "text/plain"}))


@app.after_request
def name_the_node(response):
    response.headers["x-app-node"] = node
    return response


@app.get("/login")
def login():
    params = {}
    if request.args.get("prompt") == "none":
        params["prompt"] = "none"
    if request.args.get("response_mode") == "form_post":
        params["response_mode"] = "form_post"
    if "user" in request.args:
        params["login_hint"] = request.args["user"]
    # Where to go after the login: a local path only.
    after = request.args.get("next", "")
    session["next"] = after if re.match(r"^/[^/\\]", after) else "/me"
    session["login_node"] = node
    return oauth.idp.authorize_redirect(url_for("callback", _external=True), **params)


# The IdP's answer: a GET with the parameters in the query, or (form_post)
# a POST with them in the body; Authlib reads either.
@app.route("/callback", methods=["GET", "POST"])
def callback():
    try:
        token = oauth.idp.authorize_access_token()
    except OAuthError as err:
        why = err.error + (f": {err.description}" if err.description else "")
        # No login of this session (another node's, or none): the request
        # was not the answer to a login this node started.
        status = 400 if err.error == "mismatching_state" else 401
        return fail(status, f"login failed: {why}")
    claims = token["userinfo"]
    after = session.pop("next", "/me")
    login_node = session.pop("login_node", None)
    # A new session id for the logged-in session (no fixation).
    session.renew = True
    session["user"] = {
        "sub": claims["sub"],
        "name": claims.get("name"),
        "login_node": login_node,
        "callback_node": node,
    }
    return redirect(after)


@app.get("/me")
def me():
    user = session.get("user")
    if not user:
        return fail(401, "not logged in")
    return jsonify({**user, "node": node})


@app.get("/logout")
def logout():
    session.clear()
    return make_response((f"logged out (node {node})\n", 200, {"content-type": "text/plain"}))


# A redirect built from this node's own socket address, without proxy
# awareness, as some frameworks do.
@app.get("/internal-redirect")
def internal_redirect():
    host, port = request.environ["werkzeug.socket"].getsockname()[:2]
    return redirect(f"http://{host}:{port}/me?from=internal&x=a%2Fb")


server = make_server("127.0.0.1", int(env("PORT")), app, threaded=True)
print(f"app listening {server.server_port}", flush=True)
server.serve_forever()
