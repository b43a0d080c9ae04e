// A WebSocket peer built on Node libraries of other projects ("ws" and "websocket"),
// driven by hybi's interop tests. Every result is one JSON object per line on stdout.
//
//   node peer.js server ws|websocket|websocket-driver [OPTIONS]
//                                             echo server; prints {"port": N} when listening,
//                                             {"event": "close", ...} for every closed connection;
//                                             the text "close:CODE:REASON" makes it close with CODE.
//                                             When its input ends it stops listening, and it exits
//                                             once every connection has closed and been reported.
//   node peer.js client ws|websocket URL VERSION [server-close] [OPTIONS]
//                                             sends text and binary messages across the length
//                                             boundaries, checks each echo, then closes with 4000
//                                             (or, with server-close, asks the server to close).
//
// Options (ws only, but for the reports):
//   --deflate                 permessage-deflate on, every message compressed (threshold 0)
//                             (ws's client offers it by default, its server does not)
//   --deflate=no-context      the same, asking for server_ and client_no_context_takeover
//   --deflate=window-8        the same, asking for windows of 2**8 both ways
//   --fragment                send every message (the server: every echo) in three frames
//   --text-only               the client's plan has its text messages only (for a text-only peer)
//   --max-size=N              the client's plan has the sizes up to N bytes only
//   --close-with=TEXT         with server-close, the text that asks the server to close
//                             (default "close-me"; Netty's peer takes "close:CODE:REASON")
//   --noise                   the client adds incompressible binary messages to its plan
//   --stream=N                the client sends N small messages made mostly of words sent
//                             before (a context-takeover stream) instead of its plan
// Close reports and the client's report carry "offer" and "answer", the Sec-WebSocket-Extensions
// fields of the request and of the response as this side saw them (null when absent), and
// "extensions", the extensions the library says it uses.
"use strict";

const http = require("http");

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 300000];
const NOISE_SIZES = [1, 120, 125, 126, 65500, 65535, 65536, 300000];
const LIMIT = 64 * 1024 * 1024;
const options = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((arg) => arg.startsWith("--"))
    .map((arg) => {
      const [name, value] = arg.slice(2).split("=");
      return [name, value === undefined ? true : value];
    }),
);
const [role, library, url, versionText, closeMode] = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));

setTimeout(() => finish({ event: "timeout" }, 3), role === "server" ? 120000 : 20000).unref();

// Standard output is a pipe, and Node writes to a pipe asynchronously: a line the reader has
// not made room for yet waits inside the process, and process.exit() drops it. So the process
// ends by itself when nothing is left to do (a server), or exits from the callback of its last
// write (a client, a timeout), which runs once that line and every one before it is in the pipe.
function out(object, callback) {
  process.stdout.write(JSON.stringify(object) + "\n", callback);
}

let finished = false;

function finish(object, code) {
  if (finished) return; // the first final report stands (ws emits "close" after "error")
  finished = true;
  out(object, () => process.exit(code));
}

function textOf(size) {
  // Mostly ASCII with a two-byte character every 50 positions, cut to exactly `size` bytes.
  const characters = [];
  let bytes = 0;
  for (let i = 0; bytes < size; i++) {
    const wide = i % 50 === 49 && bytes + 2 <= size;
    characters.push(wide ? "é" : String.fromCharCode(97 + (i % 26)));
    bytes += wide ? 2 : 1;
  }
  return characters.join("");
}

function bytesOf(size) {
  const buffer = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buffer[i] = (i * 7 + 3) % 251;
  return buffer;
}

function noiseOf(size) {
  // Bytes DEFLATE cannot shrink: the top byte of a 32-bit linear congruential generator
  // seeded with the size (tests/interop/compressed.py computes the same).
  const buffer = Buffer.alloc(size);
  let state = size || 1;
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    buffer[i] = state >>> 24;
  }
  return buffer;
}

const WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"];

function streamMessage(index) {
  // As stream_message in tests/interop/compressed.py: words sent before, every third binary.
  const words = [];
  for (let k = 0; k < 12; k++) words.push(WORDS[(index + k) % WORDS.length].repeat(1 + ((index + k) % 5)));
  const text = index + " " + words.join(" ");
  return index % 3 === 2 ? { binary: true, data: Buffer.from(text) } : { binary: false, data: text };
}

function plan() {
  const messages = [];
  if (options.stream) {
    for (let i = 0; i < Number(options.stream); i++) messages.push(streamMessage(i));
    return messages;
  }
  for (const size of SIZES) {
    if (options["max-size"] !== undefined && size > Number(options["max-size"])) continue;
    messages.push({ binary: false, data: textOf(size) });
    if (!options["text-only"]) messages.push({ binary: true, data: bytesOf(size) });
  }
  if (options.noise) for (const size of NOISE_SIZES) messages.push({ binary: true, data: noiseOf(size) });
  return messages;
}

// ws's permessage-deflate settings for the options: compress every message, and with
// "no-context" ask for no context takeover both ways (ws's client offers it by default).
function deflateOptions(isServer) {
  if (!options.deflate) return !isServer;
  const settings = { threshold: 0 };
  if (options.deflate === "no-context") Object.assign(settings, { serverNoContextTakeover: true, clientNoContextTakeover: true });
  // Node deflates with 9 when asked for 8 (zlib cannot deflate within 2**8), which never
  // reaches back further than 2**8 - 6 bytes.
  if (options.deflate === "window-8") Object.assign(settings, { serverMaxWindowBits: 8, clientMaxWindowBits: 8 });
  return settings;
}

// A message cut in three, at character boundaries for text: the last piece may be empty.
function thirds(message) {
  const step = Math.max(1, Math.ceil(message.data.length / 3));
  return [0, 1, 2].map((k) => message.data.slice(k * step, (k + 1) * step));
}

// Send a message with ws, in one frame or (with --fragment) in three.
function sendWs(socket, message) {
  if (!options.fragment) return socket.send(message.data, { binary: message.binary });
  thirds(message).forEach((piece, k) => socket.send(piece, { binary: message.binary, fin: k === 2 }));
}

// -- server -------------------------------------------------------------------------------

function serveWs() {
  const { WebSocketServer } = require("ws");
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: LIMIT, perMessageDeflate: deflateOptions(true) });
  server.on("listening", () => out({ port: server.address().port }));
  server.on("headers", (headers, request) => {
    const field = headers.find((line) => line.toLowerCase().startsWith("sec-websocket-extensions:"));
    request.answer = field ? field.slice(field.indexOf(":") + 1).trim() : null;
  });
  server.on("connection", (socket, request) => {
    const version = Number(request.headers["sec-websocket-version"]);
    const origin = request.headers["origin"] || request.headers["sec-websocket-origin"] || null;
    const offer = request.headers["sec-websocket-extensions"] || null;
    let messages = 0;
    socket.on("message", (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      if (text !== null && text.startsWith("close:")) {
        const [, code, reason] = text.split(":");
        socket.close(Number(code), reason);
      } else {
        messages += 1;
        sendWs(socket, { binary: isBinary, data: isBinary ? data : text });
      }
    });
    socket.on("close", (code, reason) =>
      out({ event: "close", code, reason: reason.toString(), version, origin, offer, answer: request.answer, extensions: socket.extensions, messages }),
    );
  });
  return () => server.close(); // open connections stay (ws 8)
}

function serveWebsocketNode() {
  const WebSocketServer = require("websocket").server;
  const httpServer = http.createServer((request, response) => {
    response.writeHead(404);
    response.end();
  });
  const server = new WebSocketServer({
    httpServer,
    autoAcceptConnections: false,
    maxReceivedFrameSize: LIMIT,
    maxReceivedMessageSize: LIMIT,
  });
  server.on("request", (request) => {
    const connection = request.accept(null, request.origin);
    const version = request.webSocketVersion;
    const origin = request.origin || null;
    const offer = request.httpRequest.headers["sec-websocket-extensions"] || null;
    connection.on("message", (message) => {
      if (message.type === "utf8" && message.utf8Data.startsWith("close:")) {
        const [, code, reason] = message.utf8Data.split(":");
        connection.close(Number(code), reason);
      } else if (message.type === "utf8") {
        connection.sendUTF(message.utf8Data);
      } else {
        connection.sendBytes(message.binaryData);
      }
    });
    // WebSocket-Node 1.0.35 implements no extension: it never answers an offer.
    connection.on("close", (code, reason) => out({ event: "close", code, reason, version, origin, offer, answer: null, extensions: "" }));
  });
  httpServer.listen(0, "127.0.0.1", () => out({ port: httpServer.address().port }));
  return () => httpServer.close(); // upgraded connections are no longer the HTTP server's
}

function serveWebsocketDriver() {
  // faye's websocket-driver parses the HTTP request from the raw stream, so it answers
  // hixie-75, hixie-76 (with key3 in the request's body) and version 13.
  const net = require("net");
  const websocket = require("websocket-driver");
  const server = net.createServer((socket) => {
    const driver = websocket.server({ maxLength: LIMIT });
    driver.on("connect", () => {
      if (websocket.isWebSocket(driver)) driver.start();
      else socket.end();
    });
    driver.messages.on("data", (message) => {
      if (typeof message === "string" && message.startsWith("close:")) {
        const [, code, reason] = message.split(":");
        driver.close(reason, Number(code));
      } else if (typeof message === "string") {
        driver.text(message);
      } else {
        driver.binary(message);
      }
    });
    driver.on("close", (event) => {
      out({ event: "close", code: event.code, reason: event.reason, version: driver.version });
      socket.end();
    });
    socket.on("error", () => {});
    socket.pipe(driver.io).pipe(socket);
  });
  server.listen(0, "127.0.0.1", () => out({ port: server.address().port }));
  return () => server.close();
}

// -- client -------------------------------------------------------------------------------

// A client adapter gives: send(message), close(code, reason), and calls
// onOpen(), onMessage({binary, data}), onClose(code, reason).
function clientWs(version, handlers) {
  const WebSocket = require("ws");
  const socket = new WebSocket(url, {
    protocolVersion: version,
    origin: "http://peer.test",
    maxPayload: LIMIT,
    perMessageDeflate: deflateOptions(false),
  });
  // The request this side sent: ws keeps it as _req until the handshake ends.
  handlers.handshake.offer = socket._req.getHeader("sec-websocket-extensions") || null;
  socket.on("upgrade", (response) => {
    handlers.handshake.answer = response.headers["sec-websocket-extensions"] || null;
  });
  socket.on("open", () => {
    handlers.handshake.extensions = socket.extensions;
    handlers.onOpen();
  });
  socket.on("message", (data, isBinary) => handlers.onMessage({ binary: isBinary, data: isBinary ? data : data.toString() }));
  socket.on("close", (code, reason) => handlers.onClose(code, reason.toString()));
  socket.on("error", (error) => handlers.onError(error));
  return {
    send: (message) => sendWs(socket, message),
    close: (code, reason) => socket.close(code, reason),
  };
}

function clientWebsocketNode(version, handlers) {
  const WebSocketClient = require("websocket").client;
  const client = new WebSocketClient({
    webSocketVersion: version,
    maxReceivedFrameSize: LIMIT,
    maxReceivedMessageSize: LIMIT,
  });
  let connection = null;
  client.on("connect", (opened) => {
    connection = opened;
    // WebSocket-Node 1.0.35 implements no extension: it offers none and uses none.
    handlers.handshake.answer = client.response.headers["sec-websocket-extensions"] || null;
    handlers.handshake.extensions = "";
    opened.on("message", (message) =>
      handlers.onMessage(message.type === "utf8" ? { binary: false, data: message.utf8Data } : { binary: true, data: message.binaryData }),
    );
    opened.on("close", (code, reason) => handlers.onClose(code, reason));
    opened.on("error", (error) => handlers.onError(error));
    handlers.onOpen();
  });
  client.on("connectFailed", (error) => handlers.onError(error));
  client.connect(url, null, "http://peer.test");
  // The request this side sent: WebSocket-Node keeps it as _req until the handshake ends.
  handlers.handshake.offer = client._req.getHeader("sec-websocket-extensions") || null;
  return {
    send: (message) => (message.binary ? connection.sendBytes(message.data) : connection.sendUTF(message.data)),
    close: (code, reason) => connection.close(code, reason),
  };
}

function runClient() {
  const version = Number(versionText);
  const messages = plan();
  let index = 0;
  const mismatches = [];
  let peer = null;
  const handshake = { offer: null, answer: null, extensions: null };
  const handlers = {
    handshake,
    onOpen: () => peer.send(messages[0]),
    onMessage: (received) => {
      const expected = messages[index];
      const same = received.binary === expected.binary && (expected.binary ? Buffer.compare(received.data, expected.data) === 0 : received.data === expected.data);
      if (!same) mismatches.push({ index, binary: expected.binary, size: Buffer.byteLength(expected.data) });
      index += 1;
      if (index < messages.length) peer.send(messages[index]);
      else if (closeMode === "server-close") peer.send({ binary: false, data: options["close-with"] || "close-me" });
      else peer.close(4000, "client-bye");
    },
    onClose: (code, reason) =>
      finish({ event: "done", version, echoed: index, total: messages.length, mismatches, code, reason, ...handshake }, 0),
    onError: (error) => finish({ event: "error", error: String(error && error.message ? error.message : error) }, 2),
  };
  peer = (library === "ws" ? clientWs : clientWebsocketNode)(version, handlers);
}

if (role === "server") {
  // The input may end before this side has seen the end of a connection that the driver of
  // the test has already closed (they arrive on different descriptors, in no set order), so
  // the server only stops listening then; the process ends by itself once every connection
  // has closed and its line has been written.
  const stopListening = { ws: serveWs, websocket: serveWebsocketNode, "websocket-driver": serveWebsocketDriver }[library]();
  process.stdin.on("end", stopListening);
  process.stdin.resume();
} else if (role === "client") {
  runClient();
} else {
  console.error("usage: node peer.js server|client ws|websocket [URL VERSION [server-close]]");
  process.exit(64);
}
