# A one-hop app as werkzeug documents it: Flask behind ProxyFix trusting
# exactly one proxy in front (x_for=1: the rightmost X-Forwarded-For entry
# is the client; x_proto, x_host, x_port=1: the last value of each).
# It answers every request with what it believes: the client address,
# scheme, host and the URL it would build for itself.
#
# Usage: python3 proxyfix_app.py PORT   (listens on 127.0.0.1:PORT)

import sys

from flask import Flask, jsonify, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)


@app.route("/", defaults={"path": ""})
@app.route("/<path:path>")
def whoami(path):
    return jsonify(
        remote_addr=request.remote_addr,
        scheme=request.scheme,
        host=request.host,
        callback=url_for("whoami", path="callback", _external=True),
        x_forwarded_for=request.headers.get("X-Forwarded-For"),
    )


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
