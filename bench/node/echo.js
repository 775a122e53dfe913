// echo.js - bench/b_io.c's Node reference for the echo rows: a TCP echo
// server on Node's net module (one JS thread, libuv's event loop),
// listening on 127.0.0.1:PORT.  b_io execs node on it pinned to one core.
//
//	node echo.js PORT
'use strict';
const net = require('net');

const port = Number(process.argv[2]);
if (!(port > 0 && port < 65536)) {
  console.error('usage: node echo.js PORT');
  process.exit(2);
}
const server = net.createServer((c) => {
  c.setNoDelay(true);
  c.on('data', (d) => c.write(d));
  c.on('error', () => c.destroy()); // b_io's accept row closes with a reset
});
server.on('error', (e) => {
  console.error(e.message);
  process.exit(1);
});
server.listen({ port, host: '127.0.0.1', backlog: 4096 });
