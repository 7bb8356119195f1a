"""A real HTTP server on loopback speaking enough of OpenAI's Chat Completions, Files, Batches and
Fine-tuning APIs.

Tests decide each chat reply with a ``responder(request_json) -> Reply`` function, so they can inject
faults: 429 with Retry-After, 500s, slow replies, malformed JSON, truncated output, wrong shapes.
Every request is recorded in ``server.requests`` (headers included, and the status sent back) for
assertions. ``echo_headers`` hands the responder the request headers too (``responder(body, headers)``),
for a server that echoes them into its replies.

Fine-tuning (``/fine_tuning/jobs``) is checked the way the real API checks it: ``model`` required,
``training_file``/``validation_file`` must be ids of files uploaded with purpose ``fine-tune``, no
``hyperparameters`` both at the top level and under ``method``. A job walks validating_files ->
queued -> running -> ``ft_final_status`` one step per GET, writing events as it goes. Faults:
``api_key`` (on the Files and Fine-tuning routes any other bearer key gets OpenAI's 401, whose
message shows a masked form of the key) and ``inject(route, *replies)``, which answers
the next requests to a route ("POST /files", "POST /fine_tuning/jobs", "GET /fine_tuning/jobs",
"GET /fine_tuning/jobs/{id}", "GET /fine_tuning/jobs/{id}/events", "POST /fine_tuning/jobs/{id}/cancel")
with the given replies; ``ft_lost_replies`` makes job creations succeed but answer 502.

Batches take the same ``inject`` faults on "POST /batches", "GET /batches/{id}" and
"GET /files/{id}/content", list themselves on GET /batches, and ``batch_lost_replies`` makes
batch creations succeed but answer 502.
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
from urllib.parse import parse_qs, urlsplit


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


def invalid(message: str, param: str | None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def not_found(message: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


class FakeOpenAI:
    def __init__(self, responder: Callable[[dict], Reply] | None = None):
        self.responder = responder or (lambda req: Reply(content="{}"))
        self.echo_headers = False
        self.chat_calls = 0
        self.in_flight = 0  # chat requests being answered now (their delay running)
        self.max_in_flight = 0
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.batch_polls_until_done = 2
        self.batch_final_status = "completed"
        self.batch_lost_replies = 0  # the next N batch creations succeed but answer 502
        self.batch_errors: list[dict] | None = None  # with batch_final_status "failed": why
        # fine-tuning
        self.api_key: str | None = None  # None: any key is accepted
        self.faults: dict[str, list[Reply]] = {}
        self.jobs: dict[str, dict] = {}
        self.events: dict[str, list[dict]] = {}  # job id -> events, oldest first
        self.ft_models: set[str] | None = None  # None: any model can be fine-tuned
        self.ft_polls_per_status = 1
        self.ft_final_status = "succeeded"
        self.ft_error = {"code": "invalid_training_file", "param": "training_file",
                         "message": "The job failed due to an invalid training file."}
        # the next N job creations succeed but answer 502, as when a gateway times out after the
        # backend committed: the client cannot tell whether the job exists
        self.ft_lost_replies = 0
        self._clock = 1_700_000_000
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                self.record = {"path": self.path, "method": "GET", "headers": dict(self.headers)}
                with outer.lock:
                    outer.requests.append(self.record)
                if "/fine_tuning/" in self.path:
                    return self._fine_tuning("GET", None)
                m = re.fullmatch(r".*/files/([\w-]+)/content", self.path)
                if m and m.group(1) in outer.files:
                    refused = outer.refuse(self.headers, "GET /files/{id}/content")
                    if refused:
                        return self._send(*refused)
                    return self._send_bytes(200, outer.files[m.group(1)]["content"], "application/octet-stream")
                m = re.fullmatch(r".*/batches/([\w-]+)", self.path)
                if m and m.group(1) in outer.batches:
                    refused = outer.refuse(self.headers, "GET /batches/{id}")
                    if refused:
                        return self._send(*refused)
                    return self._send(200, outer.poll_batch(m.group(1)))
                if re.fullmatch(r".*/batches(\?.*)?", self.path):
                    with outer.lock:
                        data = [outer._public(b) for b in reversed(outer.batches.values())]  # newest first
                    return self._send(200, {"object": "list", "data": data, "has_more": False})
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                if self.path.endswith("/files"):
                    self.record = {"path": self.path, "method": "POST", "headers": dict(self.headers)}
                    with outer.lock:
                        outer.requests.append(self.record)
                    refused = outer.refuse(self.headers, "POST /files")
                    if refused:
                        return self._send(*refused)
                    status, obj = outer.upload_checked(self.headers.get("content-type", ""), raw)
                    self.record["form"] = {k: obj[k] for k in ("purpose", "filename") if k in obj}
                    return self._send(status, obj)
                body = json.loads(raw or b"{}")
                self.record = {"path": self.path, "method": "POST", "headers": dict(self.headers), "json": body}
                with outer.lock:
                    outer.requests.append(self.record)
                if "/fine_tuning/" in self.path:
                    return self._fine_tuning("POST", body)
                if self.path.endswith("/batches"):
                    refused = outer.refuse(self.headers, "POST /batches")
                    if refused:
                        return self._send(*refused)
                    batch = outer.create_batch(body)
                    with outer.lock:
                        lost = outer.batch_lost_replies > 0
                        outer.batch_lost_replies -= lost
                    if lost:
                        return self._send(502, {"error": {"message": "bad gateway", "type": "server_error"}})
                    return self._send(200, batch)
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                # with ``echo_headers`` the responder also gets the request's headers (a server that
                # echoes them, Authorization included, into its replies)
                reply = outer.responder(body, dict(self.headers)) if outer.echo_headers else outer.responder(body)
                with outer.lock:
                    outer.chat_calls += 1
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1
                if reply.status != 200:
                    return self._send(reply.status, reply.error or {"error": {"message": "injected fault",
                                                                              "type": "server_error"}}, reply.headers)
                self._send(200, chat_body(body.get("model", ""), reply), reply.headers)

            def _fine_tuning(self, method: str, body: dict | None):
                url = urlsplit(self.path)
                m = re.fullmatch(r".*/fine_tuning/jobs(?:/([\w-]+))?(?:/(events|cancel))?", url.path)
                if not m:
                    return self._send(404, not_found(f"no route {self.path}"))
                job_id, action = m.groups()
                route = f"{method} /fine_tuning/jobs" + ("/{id}" if job_id else "") + (f"/{action}" if action else "")
                refused = outer.refuse(self.headers, route)
                if refused:
                    return self._send(*refused)
                if route == "POST /fine_tuning/jobs":
                    return self._send(*outer.create_job(body))
                if route == "GET /fine_tuning/jobs":
                    return self._send(200, outer.list_jobs(parse_qs(url.query)))
                if job_id not in outer.jobs:
                    return self._send(404, not_found(f"Fine-tuning job {job_id} not found.", "fine_tune_not_found"))
                if route == "GET /fine_tuning/jobs/{id}":
                    return self._send(200, outer.poll_job(job_id))
                if route == "GET /fine_tuning/jobs/{id}/events":
                    return self._send(200, outer.list_events(job_id, parse_qs(url.query)))
                if route == "POST /fine_tuning/jobs/{id}/cancel":
                    return self._send(*outer.cancel_job(job_id))
                self._send(404, not_found(f"no route {self.path}"))

            def _send(self, status, obj, headers=None):
                self._send_bytes(status, json.dumps(obj).encode(), "application/json", headers)

            def _send_bytes(self, status, data, content_type, headers=None):
                record = getattr(self, "record", None)
                if record is not None:
                    record["status"] = status
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

            def handle_error(self, request, client_address):
                # a client that went away (a stage stopped with calls in flight) is not a server error:
                # socketserver would print its traceback into the output a test reads
                import sys

                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

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
                if self.batch_final_status == "failed":
                    batch["errors"] = {"object": "list", "data": self.batch_errors or []}
                    batch["_files"] = {}  # a batch refused as a whole answers nothing
                batch["output_file_id"] = batch["_files"].get("output")
                batch["error_file_id"] = batch["_files"].get("error")
                batch["request_counts"] = dict(batch["_counts"])
            return self._public(batch)

    @staticmethod
    def _public(batch: dict) -> dict:
        return {k: v for k, v in batch.items() if not k.startswith("_") and k != "polls"}

    # --- Fine-tuning API -----------------------------------------------------------------------------
    def inject(self, route: str, *replies: Reply) -> None:
        """Answer the next requests to ``route`` (e.g. "POST /files") with ``replies``, in order."""
        with self.lock:
            self.faults.setdefault(route, []).extend(replies)

    def refuse(self, headers, route: str) -> tuple[int, dict, dict] | None:
        """(status, body, headers) when the key is wrong or a fault is queued for the route, else None."""
        key = (headers.get("authorization") or "").removeprefix("Bearer ")
        if self.api_key is not None and key != self.api_key:
            # like the real API, the message shows a masked form of the key it got
            masked = f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 7 else "***"
            return 401, {"error": {"message": f"Incorrect API key provided: {masked}. You can find your API key "
                                              "at https://platform.openai.com/account/api-keys.",
                                   "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}, {}
        with self.lock:
            queue = self.faults.get(route)
            reply = queue.pop(0) if queue else None
        if reply is None:
            return None
        if reply.delay:
            time.sleep(reply.delay)
        return reply.status, reply.error or {"error": {"message": "injected fault", "type": "server_error",
                                                       "param": None, "code": None}}, reply.headers

    def upload_checked(self, content_type: str, raw: bytes) -> tuple[int, dict]:
        """``upload`` with the checks the real Files API makes before storing anything."""
        try:
            head = b"content-type: " + content_type.encode() + b"\r\n\r\n"
            msg = BytesParser(policy=default).parsebytes(head + raw)
            fields = {part.get_param("name", header="content-disposition"): part for part in msg.iter_parts()}
        except Exception:  # not multipart at all
            fields = {}
        if "file" not in fields or "purpose" not in fields:
            missing = "file" if "file" not in fields else "purpose"
            return 400, invalid(f"Missing required parameter: '{missing}'.", missing, "missing_required_parameter")
        purpose = fields["purpose"].get_content().strip()
        if purpose not in ("assistants", "batch", "fine-tune", "vision", "user_data", "evals"):
            return 400, invalid(f"'{purpose}' is not one of ['fine-tune', 'assistants', 'batch', 'user_data', "
                                "'evals', 'vision'] - 'purpose'", "purpose")
        if purpose == "fine-tune" and not (fields["file"].get_filename() or "").endswith(".jsonl"):
            return 400, invalid("Invalid file format for Fine-Tuning API. Must be .jsonl", "file")
        return 200, self.upload(content_type, raw)

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _event(self, job_id: str, message: str, level: str = "info", kind: str = "message",
               data: dict | None = None) -> None:
        events = self.events.setdefault(job_id, [])
        events.append({"id": f"ftevent-{job_id.split('-')[-1]}-{len(events) + 1}", "object": "fine_tuning.job.event",
                       "created_at": self._tick(), "level": level, "message": message, "type": kind,
                       "data": data or {}})

    def _fine_tune_file(self, body: dict, key: str) -> tuple[int, dict] | None:
        file_id = body.get(key)
        if key == "validation_file" and file_id is None:
            return None
        if not isinstance(file_id, str) or not file_id:
            return 400, invalid(f"Missing required parameter: '{key}'.", key, "missing_required_parameter")
        f = self.files.get(file_id)
        if f is None or f["purpose"] != "fine-tune":
            return 400, invalid(f"Invalid file ID: {file_id}. The {key} must be the id of a file uploaded with "
                                "purpose 'fine-tune'.", key, f"invalid_{key}")
        return None

    def create_job(self, body: dict) -> tuple[int, dict]:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return 400, invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        if self.ft_models is not None and model not in self.ft_models:
            return 400, invalid(f"Model {model} is not available for fine-tuning or does not exist.", "model",
                                "model_not_available")
        for key in ("training_file", "validation_file"):
            problem = self._fine_tune_file(body, key)
            if problem:
                return problem
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            return 400, invalid("suffix must be a string of at most 64 characters.", "suffix")
        method = body.get("method")
        if method is not None and body.get("hyperparameters") is not None:
            return 400, invalid("hyperparameters cannot be set both at the top level and in method; use method.",
                                "hyperparameters")
        if method is not None:
            if not isinstance(method, dict) or method.get("type") not in ("supervised", "dpo", "reinforcement"):
                return 400, invalid("method.type must be one of supervised, dpo, reinforcement.", "method.type")
            hyper = (method.get(method["type"]) or {}).get("hyperparameters") or {}
        else:
            hyper = body.get("hyperparameters") or {}
        n_epochs = hyper.get("n_epochs", "auto")
        if n_epochs != "auto" and not (isinstance(n_epochs, int) and 1 <= n_epochs <= 50):
            return 400, invalid(f"Invalid n_epochs: {n_epochs!r}; must be 'auto' or an integer from 1 to 50.",
                                "hyperparameters.n_epochs")
        with self.lock:
            job_id = f"ftjob-{len(self.jobs) + 1}"
            hyperparameters = {"n_epochs": 3 if n_epochs == "auto" else n_epochs, "batch_size": 1,
                               "learning_rate_multiplier": 1.8}
            self.jobs[job_id] = {
                "id": job_id, "object": "fine_tuning.job", "created_at": self._tick(), "error": None,
                "fine_tuned_model": None, "finished_at": None, "hyperparameters": hyperparameters,
                "model": model, "organization_id": "org-test", "result_files": [], "seed": 42,
                "status": "validating_files", "trained_tokens": None, "training_file": body["training_file"],
                "validation_file": body.get("validation_file"), "estimated_finish": None, "integrations": [],
                "metadata": body.get("metadata"), "user_provided_suffix": suffix,
                "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
                "_polls": 0,
            }
            files = f"training file: {body['training_file']}"
            if body.get("validation_file"):
                files += f" and validation file: {body['validation_file']}"
            self._event(job_id, f"Validating {files}")
            if self.ft_lost_replies > 0:
                self.ft_lost_replies -= 1
                return 502, {"error": {"message": "Bad gateway.", "type": "server_error", "param": None,
                                       "code": None}}
            return 200, self._public(self.jobs[job_id])

    def list_jobs(self, query: dict) -> dict:
        """Newest first, ``limit`` at a time, ``after`` = the last job id of the previous page."""
        limit = int(query.get("limit", ["20"])[0])
        with self.lock:
            jobs = [self._public(j) for j in reversed(self.jobs.values())]
        after = query.get("after", [None])[0]
        if after is not None:
            ids = [j["id"] for j in jobs]
            jobs = jobs[ids.index(after) + 1:] if after in ids else []
        return {"object": "list", "data": jobs[:limit], "has_more": len(jobs) > limit}

    def poll_job(self, job_id: str) -> dict:
        """Each GET moves the job on: validating_files -> queued -> running -> ft_final_status."""
        steps = ["validating_files", "queued", "running", self.ft_final_status]
        with self.lock:
            job = self.jobs[job_id]
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return self._public(job)
            job["_polls"] += 1
            target = steps[min(job["_polls"] // self.ft_polls_per_status, len(steps) - 1)]
            while job["status"] != target:
                job["status"] = steps[steps.index(job["status"]) + 1]
                self._on_status(job)
            return self._public(job)

    def _on_status(self, job: dict) -> None:
        job_id, status = job["id"], job["status"]
        if status == "queued":
            self._event(job_id, "Files validated, moving job to queued state")
        elif status == "running":
            self._event(job_id, "Fine-tuning job started")
            steps = 2 * job["hyperparameters"]["n_epochs"]
            for step in (1, steps):
                loss = round(2.0 / step, 4)
                self._event(job_id, f"Step {step}/{steps}: training loss={loss}", kind="metrics",
                            data={"step": step, "total_steps": steps, "train_loss": loss})
        elif status == "succeeded":
            suffix = job["user_provided_suffix"]
            # ft:{base}:{org}:{suffix}:{id}, as OpenAI names them
            job["fine_tuned_model"] = f"ft:{job['model']}:org-test:{suffix or ''}:{job_id.replace('-', '')}"
            job["trained_tokens"] = (len(self.files[job["training_file"]]["content"]) // 4
                                     * job["hyperparameters"]["n_epochs"])
            job["finished_at"] = self._tick()
            job["result_files"] = []
            self._event(job_id, f"New fine-tuned model created: {job['fine_tuned_model']}")
            self._event(job_id, "The job has successfully completed")
        elif status == "failed":
            job["error"] = dict(self.ft_error)
            job["finished_at"] = self._tick()
            self._event(job_id, job["error"]["message"], level="error")

    def list_events(self, job_id: str, query: dict) -> dict:
        """Newest first, ``limit`` at a time, ``after`` = the last event id of the previous page."""
        limit = int(query.get("limit", ["20"])[0])
        with self.lock:
            events = list(reversed(self.events.get(job_id, [])))
        after = query.get("after", [None])[0]
        if after is not None:
            ids = [e["id"] for e in events]
            events = events[ids.index(after) + 1:] if after in ids else []
        return {"object": "list", "data": events[:limit], "has_more": len(events) > limit}

    def cancel_job(self, job_id: str) -> tuple[int, dict]:
        with self.lock:
            job = self.jobs[job_id]
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return 400, invalid(f"Job {job_id} has already {job['status']} and cannot be cancelled.", None)
            job["status"] = "cancelled"
            job["finished_at"] = self._tick()
            self._event(job_id, "Fine-tuning job cancelled")
            return 200, self._public(job)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
