// httpd.js - bench/b_io.c's Node reference for the Http rows: Node's http
// module answering every request with the 6-byte body "hello\n" and the
// headers of examples/httpd.c (Content-Type: text/plain, Content-Length: 6;
// no Date header, which the C servers do not send either; Node adds its
// Connection: keep-alive and Keep-Alive: timeout=5 headers), keep-alive,
// listening on 127.0.0.1:PORT.  b_io execs node on it pinned to one core
// and loads it with wrk.
//
//	node httpd.js PORT
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
if (!(port > 0 && port < 65536)) {
  console.error('usage: node httpd.js PORT');
  process.exit(2);
}
const body = Buffer.from('hello\n');
const server = http.createServer({ noDelay: true }, (req, res) => {
  res.sendDate = false;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.on('error', (e) => {
  console.error(e.message);
  process.exit(1);
});
server.listen({ port, host: '127.0.0.1', backlog: 4096 });
