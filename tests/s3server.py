"""A loopback S3 endpoint for the remote tests, and a proxy that breaks uploads on cue.

`MotoS3` is moto's own threaded server (the one dvc-s3's tests use) on 127.0.0.1 and a free port.
`FaultyProxy` sits between `dvc push` and moto and, once `after` uploads (PUTs) have gone through,
either holds every further upload (`stall`: the push hangs, so the test can kill it at a known
point) or answers them with S3's 500 InternalError (`error`: the push fails by itself). Counting
PUTs at the HTTP level makes the interruption point exact, whatever order dvc's threads upload in.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.server import ThreadedMotoServer

# hop-by-hop headers (the proxy re-frames bodies itself), and those http.server writes on its own
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
OWN = {"server", "date"}

S3_500 = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
          b"<Message>injected by the test proxy</Message></Error>")


class MotoS3:
    """moto's S3 on loopback; `url` is the endpoint for `dvc remote modify ... endpointurl`."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # 0: free port
        self.url = ""

    def __enter__(self) -> MotoS3:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()

    def alive(self) -> bool:
        host, port = self.url.removeprefix("http://").split(":")
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
            conn.request("GET", "/moto-api/")
            conn.getresponse().read()
            return True
        except OSError:
            return False


class FaultyProxy:
    """An HTTP reverse proxy on loopback in front of `upstream` (http://host:port).

    mode "pass" forwards everything; "stall" and "error" forward the first `after` PUTs and then
    hold or fail every further PUT. `puts` counts the PUTs forwarded; `held` those being held.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.mode = "pass"
        self.after = 0
        self.puts = 0
        self.held = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FaultyProxy:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def break_after(self, n: int, mode: str) -> None:
        assert mode in ("stall", "error")
        with self._lock:
            self.mode, self.after, self.puts, self.held = mode, n, 0, 0
        self._release.clear()

    def heal(self) -> None:
        """Forward everything from now on; held uploads are dropped (their client is gone)."""
        with self._lock:
            self.mode, self.puts = "pass", 0
        self._release.set()

    def wait_held(self, timeout: float) -> bool:
        """True once the push has used up its `after` uploads and is blocked on the next one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.puts == self.after and self.held > 0:
                    return True
            time.sleep(0.05)
        return False

    def _verdict(self, method: str) -> str:
        """'forward', 'stall' or 'error' for this request; counts forwarded PUTs."""
        if method != "PUT":
            return "forward"
        with self._lock:
            if self.mode != "pass" and self.puts >= self.after:
                if self.mode == "stall":
                    self.held += 1
                return self.mode
            self.puts += 1
            return "forward"

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(parts)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _any(self) -> None:
                body = self._body()
                verdict = proxy._verdict(self.command)
                if verdict == "stall":
                    proxy._release.wait()
                    self.close_connection = True  # no answer at all: a dropped upload
                    return
                if verdict == "error":
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(S3_500)))
                    self.end_headers()
                    self.wfile.write(S3_500)
                    return
                host, port = proxy.upstream.split(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP | OWN:
                        self.send_header(k, v)
                # a HEAD answer carries the object's length but no body
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        return Handler
