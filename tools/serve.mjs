// A small static server for the demo and the page tests: COOP/COEP headers (so
// the page is cross-origin isolated), correct MIME types (WebAssembly needs
// application/wasm for streaming compilation), and HTTP Range requests for model
// files. No dependencies.
//
//   node tools/serve.mjs --root www --port 8080 [--relay]
//
// `--relay` adds POST/GET /__relay/<name>: a POSTed body is served back as
// `text/event-stream`, so tests can feed Hearth's SSE bytes to a real EventSource
// (the shape of a server relay).
import { createServer } from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.gguf': 'application/octet-stream',
};

export function startServer({ root, port = 8080, host = '127.0.0.1', relay = false }) {
  const base = resolve(root);
  const relays = new Map();

  const server = createServer(async (req, res) => {
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    try {
      const url = new URL(req.url, 'http://localhost');
      if (relay && url.pathname.startsWith('/__relay/')) return handleRelay(req, res, url, relays);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      let path = resolve(join(base, decodeURIComponent(url.pathname)));
      if (path !== base && !path.startsWith(base + sep)) {
        res.writeHead(403).end('forbidden');
        return;
      }
      let stat = await fs.stat(path).catch(() => null);
      if (stat && stat.isDirectory()) {
        path = join(path, 'index.html');
        stat = await fs.stat(path).catch(() => null);
      }
      if (!stat || !stat.isFile()) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
        return;
      }
      const type = MIME[extname(path).toLowerCase()] || 'application/octet-stream';
      const headers = {
        'Content-Type': type,
        'Accept-Ranges': 'bytes',
        'Cache-Control': 'no-cache',
        'Last-Modified': stat.mtime.toUTCString(),
      };
      const range = req.headers.range && parseRange(req.headers.range, stat.size);
      if (range === 'unsatisfiable') {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${stat.size}` }).end();
        return;
      }
      if (range) {
        const [start, end] = range;
        res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${stat.size}` });
        if (req.method === 'HEAD') return res.end();
        createReadStream(path, { start, end }).pipe(res);
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Length': stat.size });
      if (req.method === 'HEAD') return res.end();
      createReadStream(path).pipe(res);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(String(e));
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok(server));
  });
}

// One `bytes=start-end`, `bytes=start-` or `bytes=-suffix` range (RFC 9110 §14.1.2);
// several ranges are answered with the whole file, which the RFC allows.
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start;
  let end;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return [start, end];
}

async function handleRelay(req, res, url, relays) {
  const name = url.pathname.slice('/__relay/'.length);
  if (req.method === 'POST') {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    relays.set(name, Buffer.concat(chunks));
    res.writeHead(204).end();
    return;
  }
  const body = relays.get(name);
  if (!body) {
    res.writeHead(404).end();
    return;
  }
  // Sent once, then closed; `retry` keeps EventSource from reconnecting soon.
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.end(Buffer.concat([Buffer.from('retry: 600000\n\n'), body]));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const port = Number(opt('port', 8080));
  const root = opt('root', 'www');
  await startServer({ root, port, relay: args.includes('--relay') });
  console.log(`Hearth demo: http://127.0.0.1:${port}/  (serving ${resolve(root)}; Ctrl-C to stop)`);
}
