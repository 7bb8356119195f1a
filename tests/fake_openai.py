"""A real HTTP server on loopback speaking enough of OpenAI's Chat Completions, Files and Batches APIs.

Tests decide each reply with a ``responder(request_json) -> Reply`` function, so they can inject
faults: 429 with Retry-After, 500s, slow replies, malformed JSON, truncated output, wrong shapes.
Every request is recorded in ``server.requests`` (headers included) for assertions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    finish_reason: str = "stop"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    error: dict | None = None  # body for non-200 replies
    prompt_tokens: int = 10
    completion_tokens: int = 5


def chat_body(model: str, reply: Reply) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                     "finish_reason": reply.finish_reason}],
        "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                  "total_tokens": reply.prompt_tokens + reply.completion_tokens},
    }


class FakeOpenAI:
    def __init__(self, responder: Callable[[dict], Reply] | None = None):
        self.responder = responder or (lambda req: Reply(content="{}"))
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.batch_polls_until_done = 2
        self.batch_final_status = "completed"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                with outer.lock:
                    outer.requests.append({"path": self.path, "method": "GET", "headers": dict(self.headers)})
                m = re.fullmatch(r".*/files/([\w-]+)/content", self.path)
                if m and m.group(1) in outer.files:
                    return self._send_bytes(200, outer.files[m.group(1)]["content"], "application/octet-stream")
                m = re.fullmatch(r".*/batches/([\w-]+)", self.path)
                if m and m.group(1) in outer.batches:
                    return self._send(200, outer.poll_batch(m.group(1)))
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                if self.path.endswith("/files"):
                    with outer.lock:
                        outer.requests.append({"path": self.path, "method": "POST", "headers": dict(self.headers)})
                    return self._send(200, outer.upload(self.headers.get("content-type", ""), raw))
                body = json.loads(raw or b"{}")
                with outer.lock:
                    outer.requests.append({"path": self.path, "method": "POST", "headers": dict(self.headers), "json": body})
                if self.path.endswith("/batches"):
                    return self._send(200, outer.create_batch(body))
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                reply = outer.responder(body)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    return self._send(reply.status, reply.error or {"error": {"message": "injected fault",
                                                                              "type": "server_error"}}, reply.headers)
                self._send(200, chat_body(body.get("model", ""), reply), reply.headers)

            def _send(self, status, obj, headers=None):
                self._send_bytes(status, json.dumps(obj).encode(), "application/json", headers)

            def _send_bytes(self, status, data, content_type, headers=None):
                try:
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout tests)
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # benchmarks open 64+ connections at once

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # --- Files and Batches APIs (enough of them for the Batch provider) ----------------------------
    def upload(self, content_type: str, raw: bytes) -> dict:
        msg = BytesParser(policy=default).parsebytes(b"content-type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields = {part.get_param("name", header="content-disposition"): part for part in msg.iter_parts()}
        content = fields["file"].get_payload(decode=True)
        with self.lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = {"content": content, "purpose": fields["purpose"].get_content().strip(),
                                   "filename": fields["file"].get_filename()}
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": 0,
                "filename": self.files[file_id]["filename"], "purpose": self.files[file_id]["purpose"]}

    def create_batch(self, body: dict) -> dict:
        """Run every request of the batch through the responder now; report it done after some polls."""
        lines = self.files[body["input_file_id"]]["content"].decode().splitlines()
        out, err = [], []
        for line in filter(None, lines):
            req = json.loads(line)
            reply = self.responder(req["body"])
            if reply.status == 200:
                out.append({"id": f"req-{req['custom_id'][:8]}", "custom_id": req["custom_id"], "error": None,
                            "response": {"status_code": 200, "body": chat_body(req["body"]["model"], reply)}})
            else:
                err.append({"id": f"req-{req['custom_id'][:8]}", "custom_id": req["custom_id"], "response": None,
                            "error": {"code": "server_error", "message": "injected fault"}})
        with self.lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            files = {}
            for kind, rows in (("output", out), ("error", err)):
                if rows:
                    fid = f"file-{len(self.files) + 1}"
                    self.files[fid] = {"content": "".join(json.dumps(r) + "\n" for r in rows).encode(),
                                       "purpose": "batch_output", "filename": f"{kind}.jsonl"}
                    files[kind] = fid
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                "status": "in_progress", "created_at": 0, "polls": 0, "_files": files,
                "output_file_id": None, "error_file_id": None,
                "request_counts": {"total": len(out) + len(err), "completed": 0, "failed": 0},
                "_counts": {"total": len(out) + len(err), "completed": len(out), "failed": len(err)},
            }
            return self._public(self.batches[batch_id])

    def poll_batch(self, batch_id: str) -> dict:
        with self.lock:
            batch = self.batches[batch_id]
            batch["polls"] += 1
            if batch["polls"] >= self.batch_polls_until_done:
                batch["status"] = self.batch_final_status
                batch["output_file_id"] = batch["_files"].get("output")
                batch["error_file_id"] = batch["_files"].get("error")
                batch["request_counts"] = dict(batch["_counts"])
            return self._public(batch)

    @staticmethod
    def _public(batch: dict) -> dict:
        return {k: v for k, v in batch.items() if not k.startswith("_") and k != "polls"}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
