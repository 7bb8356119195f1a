"""URL downloads (gabarito.sources.download_text, for ingest's and mcq's url sources) against loopback servers
that never finish or never stop (issue 23, 4): download_timeout_s bounds the whole download, not the gap
between two bytes, and max_download_mb stops a file larger than any exam. Every server here stops by
itself within SERVER_LIMIT_S, whatever the client does."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from gabarito.io import InputError
from gabarito.sources import download_text
from stages.ingest import load_urls
from tests.cli_runner import invoke

TIMEOUT_S = 1.5
# the deadline is checked after every chunk and the caller stops waiting at it: a second of slack covers
# a slow machine's thread start and connect, well under what the trickle takes (SERVER_LIMIT_S)
SLACK_S = 1.5
SERVER_LIMIT_S = 10.0
TICK_S = 0.25  # one byte per tick: a gap far below TIMEOUT_S, so a gap-only timeout never fires
HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"
ROW = 'a1,"It rained, so I stayed.",Why?,w,x,y,z,3\n'


class Handler(BaseHTTPRequestHandler):
    """GET /trickle: a complete CSV of ~40 bytes, one byte per tick (it would end after ~10 s);
    /slow-headers: the same, but the headers come a byte per tick; /huge: 64 KB chunks up to 4 MB with no
    Content-Length; /announced: a Content-Length of 10 GB and a few bytes; anything else: a small CSV."""

    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no length needed

    def log_message(self, *args):
        pass

    def _trickle(self, data: bytes) -> None:
        stop = time.monotonic() + SERVER_LIMIT_S
        for i in range(len(data)):
            if time.monotonic() > stop:
                return
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
            time.sleep(TICK_S)

    def do_GET(self):
        path = self.path.split("?")[0]
        body = (HEADER + ROW).encode()
        try:
            if path == "/trickle.csv":
                body = body[:int(SERVER_LIMIT_S / TICK_S)]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self._trickle(body)
            elif path == "/slow-headers.csv":
                self.wfile.write(b"HTTP/1.0 200 OK\r\n")
                self._trickle(b"X-Slow: " + b"z" * int(SERVER_LIMIT_S / TICK_S - 10) + b"\r\n\r\n")
                self.wfile.write(body)
            elif path == "/huge.csv":
                self.send_response(200)
                self.end_headers()
                chunk = (HEADER + ROW * 2000)[:1 << 16].encode()
                for _ in range(64):  # 4 MB, then the server closes
                    self.wfile.write(chunk)
            elif path == "/announced.csv":
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 10**9))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: so does the server
            return


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def timed(fn):
    start = time.monotonic()
    try:
        return fn(), time.monotonic() - start
    except InputError as exc:
        return exc, time.monotonic() - start


@pytest.mark.parametrize("name", ["trickle.csv", "slow-headers.csv"])
def test_a_download_that_trickles_stops_at_the_timeout_naming_the_knob(server, name):
    err, took = timed(lambda: load_urls({"train": f"{server}/{name}?v=2"}, ["train"], timeout=TIMEOUT_S))
    assert isinstance(err, InputError), f"read {err!r} in {took:.1f} s"
    assert took < TIMEOUT_S + SLACK_S, f"stopped after {took:.1f} s"
    msg = str(err)
    assert msg.startswith(f"{server}/{name}?<hidden>: the download did not finish within 1.5 s (")
    assert "ingest.download_timeout_s sets for the whole download" in msg and "v=2" not in msg


def test_a_file_larger_than_the_limit_is_stopped_naming_the_knob(server):
    err, took = timed(lambda: load_urls({"train": f"{server}/huge.csv?v=2"}, ["train"], timeout=30, max_mb=0.1))
    assert isinstance(err, InputError), err
    msg = str(err)
    assert msg.startswith(f"{server}/huge.csv?<hidden>: larger than 0.1 MB (stopped after ")
    assert "the limit ingest.max_download_mb sets" in msg and took < 10
    err, _ = timed(lambda: download_text(f"{server}/announced.csv", timeout=30, max_mb=200, section="mcq"))
    assert isinstance(err, InputError) and "(the server announces 10,000,000,000 bytes), the limit " \
                                           "mcq.max_download_mb sets" in str(err)


def test_a_file_within_both_limits_is_read(server):
    assert download_text(f"{server}/small.csv", timeout=TIMEOUT_S, max_mb=0.001) == HEADER + ROW
    err, _ = timed(lambda: download_text(f"{server}/small.csv", timeout=TIMEOUT_S, max_mb=0.00001))
    assert isinstance(err, InputError) and "max_download_mb (of the params.yaml section that lists" in str(err)


# --- the stages ------------------------------------------------------------------------------------------
def test_gabarito_mcq_stops_a_trickling_url_source_at_its_timeout(server, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"mcq": {"sources": [{"url": f"{server}/trickle.csv?v=2"}], "download_timeout_s": TIMEOUT_S}}))
    result, took = timed(lambda: invoke(["mcq", "--out-pt", "out/pt.jsonl", "--out-en", "out/en.jsonl",
                                         "--metrics", "out/mcq.json"], cwd=tmp_path))
    assert result.exit_code == 1 and took < TIMEOUT_S + SLACK_S, (took, result.output)
    assert f"{server}/trickle.csv?<hidden>: the download did not finish within 1.5 s" in result.output
    assert "mcq.download_timeout_s" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_gabarito_ingest_stops_a_url_larger_than_max_download_mb(server, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": {
        "source": "url", "splits": ["train"], "urls": {"train": f"{server}/huge.csv"}, "max_download_mb": 0.5}}))
    result = invoke(["ingest", "--local-dir", "none", "--out", "out/en.jsonl"], cwd=tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{server}/huge.csv: larger than 0.5 MB (stopped after " in result.output
    assert "the limit ingest.max_download_mb sets" in result.output and not (tmp_path / "out").exists()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": {
        "source": "url", "splits": ["train"], "urls": {"train": f"{server}/small.csv"}}}))
    result = invoke(["ingest", "--local-dir", "none", "--out", "out/en.jsonl"], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["id"] for x in (tmp_path / "out/en.jsonl").read_text().splitlines()] == ["a1"]


def test_gabarito_mcq_stops_a_url_source_larger_than_max_download_mb(server, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"mcq": {"sources": [{"url": f"{server}/huge.csv?v=2"}], "max_download_mb": 0.5}}))
    result = invoke(["mcq", "--out-pt", "out/pt.jsonl", "--out-en", "out/en.jsonl", "--metrics", "out/mcq.json"],
                    cwd=tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{server}/huge.csv?<hidden>: larger than 0.5 MB (stopped after " in result.output
    assert "the limit mcq.max_download_mb sets" in result.output and not (tmp_path / "out").exists()
