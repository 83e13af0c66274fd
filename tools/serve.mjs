// A small static server for the demo and the page tests: COOP/COEP headers (so
// the page is cross-origin isolated), correct MIME types (WebAssembly needs
// application/wasm for streaming compilation), and HTTP Range requests for model
// files. No dependencies.
//
//   node tools/serve.mjs --root www --port 8080 [--mount /models=models] [--test-routes] [--no-isolation]
//
// `--mount URL=DIR` serves another folder under a URL prefix (the models).
// `--test-routes` adds what the page tests need, never used by the demo:
//   POST/GET /__relay/<name>   a POSTed body served back as text/event-stream, so a real
//                              EventSource can read Hearth's SSE bytes (a server relay)
//   /__test/status/<code>      answers with that HTTP status
//   /__test/norange/<path>     the file at <path>, ignoring Range (a server without it)
//   /__test/truncate/<path>    announces the full length, sends half, cuts the connection
//   /__test/slow/<path>        the file in 64 KiB chunks, 20 ms apart, ignoring Range
//   /__test/slowrange/<path>   Range honoured, each range in 64 KiB chunks, 20 ms apart
//   /__test/stats              bytes sent per path since start (JSON)
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

/** Sends `stream` to `res` one chunk every 20 ms (the slow test routes); `sent(n)` per chunk. */
function trickle(stream, res, sent = () => {}) {
  stream.on('data', (c) => {
    sent(c.length);
    stream.pause();
    res.write(c);
    setTimeout(() => stream.resume(), 20);
  });
  stream.on('end', () => res.end());
  res.on('close', () => stream.destroy());
}

export function startServer({
  root, port = 8080, host = '127.0.0.1', mounts = {}, testRoutes = false, cors = false, isolated = true,
}) {
  const base = resolve(root);
  const mounted = Object.entries(mounts).map(([prefix, dir]) => [prefix.replace(/\/$/, ''), resolve(dir)]);
  const relays = new Map();
  const sent = new Map();
  const count = (path, n) => sent.set(path, (sent.get(path) || 0) + n);

  const server = createServer(async (req, res) => {
    // `isolated: false` (`--no-isolation`) serves as most hosts do, without COOP/COEP: the page
    // is not cross-origin isolated (no SharedArrayBuffer), which the package must run on too.
    if (isolated) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    res.setHeader('Cross-Origin-Resource-Policy', cors ? 'cross-origin' : 'same-origin');
    if (cors) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, Accept-Ranges');
    }
    try {
      const url = new URL(req.url, 'http://localhost');
      let pathname = decodeURIComponent(url.pathname);
      let mode = 'normal';
      if (testRoutes) {
        if (pathname.startsWith('/__relay/')) return handleRelay(req, res, url, relays);
        if (pathname === '/__test/stats') {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(Object.fromEntries(sent)));
          return;
        }
        const status = /^\/__test\/status\/(\d{3})$/.exec(pathname);
        if (status) {
          res.writeHead(Number(status[1]), { 'Content-Type': 'text/plain' }).end(`status ${status[1]}`);
          return;
        }
        const special = /^\/__test\/(norange|truncate|slowrange|slow)(\/.*)$/.exec(pathname);
        if (special) {
          mode = special[1];
          pathname = special[2];
        }
      }
      if (req.method === 'OPTIONS' && cors) {
        res.writeHead(204, { 'Access-Control-Allow-Headers': 'Range', 'Access-Control-Allow-Methods': 'GET, HEAD' }).end();
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      let dir = base;
      let rel = pathname;
      for (const [prefix, target] of mounted) {
        if (pathname === prefix || pathname.startsWith(prefix + '/')) {
          dir = target;
          rel = pathname.slice(prefix.length) || '/';
          break;
        }
      }
      let path = resolve(join(dir, rel));
      if (path !== dir && !path.startsWith(dir + sep)) {
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
      if (mode === 'truncate') {
        res.writeHead(200, { ...headers, 'Content-Length': stat.size });
        const half = Math.floor(stat.size / 2);
        const stream = createReadStream(path, { start: 0, end: half - 1 });
        stream.on('data', (c) => count(pathname, c.length));
        stream.on('end', () => res.destroy());
        stream.pipe(res, { end: false });
        return;
      }
      if (mode === 'slow') {
        res.writeHead(200, { ...headers, 'Content-Length': stat.size });
        trickle(createReadStream(path, { highWaterMark: 65536 }), res, (n) => count(pathname, n));
        return;
      }
      const range = mode === 'norange' ? null : req.headers.range && parseRange(req.headers.range, stat.size);
      if (range === 'unsatisfiable') {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${stat.size}` }).end();
        return;
      }
      if (range) {
        const [start, end] = range;
        res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${stat.size}` });
        if (req.method === 'HEAD') return res.end();
        count(pathname, end - start + 1);
        const stream = createReadStream(path, { start, end, highWaterMark: 65536 });
        if (mode === 'slowrange') return trickle(stream, res);
        stream.pipe(res);
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Length': stat.size });
      if (req.method === 'HEAD') return res.end();
      count(pathname, stat.size);
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
  const mounts = {};
  args.forEach((a, i) => {
    if (a === '--mount') {
      const [prefix, dir] = args[i + 1].split('=');
      mounts[prefix] = dir;
    }
  });
  await startServer({ root, port, mounts, testRoutes: args.includes('--test-routes'), isolated: !args.includes('--no-isolation') });
  console.log(`Hearth demo: http://127.0.0.1:${port}/  (serving ${resolve(root)}; Ctrl-C to stop)`);
}
