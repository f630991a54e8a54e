// A one-hop app as Express documents it: `trust proxy` 1, the proxy in
// front (Envoy) is the only one trusted, so req.ip is the rightmost
// X-Forwarded-For entry and req.protocol/req.host come from
// X-Forwarded-Proto/-Host. Answers every request with what it believes, in
// the same shape as proxyfix_app.py.
//
// Environment: PORT (0: any). Prints "onehop listening <port>".

import express from 'express';

const app = express();
app.set('trust proxy', 1);
app.use((req, res) => {
  res.json({
    remote_addr: req.ip,
    scheme: req.protocol,
    host: req.host,
    callback: `${req.protocol}://${req.host}/callback`,
    x_forwarded_for: req.get('x-forwarded-for') ?? null,
  });
});
const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`onehop listening ${server.address().port}`);
});
