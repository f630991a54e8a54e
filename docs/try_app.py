"""A stand-in app node for trying oidc-edge on one machine (README, "Try your
own configuration"): python3 docs/try_app.py PORT

GET /login answers like a relying party starting a login: a 302 to the IdP
with a fresh state and a redirect_uri built, as most apps build it, from
X-Forwarded-Proto and -Host. Anything else answers JSON with the node's port,
the path and every header the node received, so you can see what oidc-edge
and Envoy passed on.
"""

import http.server
import json
import sys
import urllib.parse
import uuid

PORT = int(sys.argv[1])


class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/login"):
            proto = self.headers.get("X-Forwarded-Proto", "http")
            host = self.headers.get("X-Forwarded-Host", self.headers.get("Host"))
            redirect_uri = urllib.parse.quote(f"{proto}://{host}/callback", safe="")
            self.send_response(302)
            self.send_header(
                "Location",
                "https://idp.example.com/oauth2/authorize?response_type=code&client_id=app"
                f"&state={uuid.uuid4().hex}&redirect_uri={redirect_uri}",
            )
            self.end_headers()
            return
        body = json.dumps({"node": PORT, "path": self.path, "headers": dict(self.headers)}, indent=1)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode() + b"\n")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), App).serve_forever()
