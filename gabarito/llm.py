"""One engine for every LLM call the pipeline makes (translate and synthesize share it).

- Talks to any OpenAI-compatible Chat Completions endpoint through the official ``openai`` client:
  OpenAI, vLLM, Ollama, LM Studio. ``base_url`` comes from params or ``$OPENAI_BASE_URL``; the key
  only ever from ``$OPENAI_API_KEY`` (it is never logged, cached or written anywhere; replies and
  ledger entries are scrubbed of it and of any Authorization value, in case a server echoes them).
- Runs calls concurrently under a semaphore, retries transient failures (connection errors,
  timeouts, 408/409/429/5xx) with exponential backoff and jitter, honouring ``Retry-After``, and
  stops the stage at once on 401/403/404, which no retry can fix. A 400, 413 or 422 is about one
  request (an item over the model's context window or a proxy's body limit, say): that item fails,
  naming its id, and the others go on.
  A circuit breaker stops sending when ``abort_after_consecutive_failures`` jobs in a row gave up on
  transient errors (the API looks down) and fails the stage; jobs not sent are not recorded as
  failures, so the rerun asks them.
  Key resolution, error messages, Retry-After and secret scrubbing are ``gabarito.openai_client``'s.
- Asks for JSON (a JSON schema where supported) and validates each reply with the caller's
  validator, never ``eval``. An invalid reply is re-asked with the validation error, up to
  ``max_reasks`` times; after that the job is recorded as a failure with its raw reply.
- Every finished job goes to an append-only, fsynced ledger keyed by a hash of (model, prompt
  template, input, generation params). A rerun, or a run after ``kill -9``, makes no call for
  anything already in the ledger.
- Optional client-side requests/min and tokens/min limits (token buckets), and a cost estimate
  from the prices in params, shown on the progress bar and written to the stage's metrics.
- ``run_batch`` sends the same jobs through OpenAI's Batch API (half price, results within a day):
  request JSONL with ``custom_id`` = ledger key, upload, create, poll, download; replies pass the
  same validation, invalid ones are re-asked through the chat API. Batch ids are recorded in the
  ledger, so a rerun resumes polling instead of submitting again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gabarito import openai_client
from gabarito.io import InputError, dumps
from gabarito.params import LLMParams, redact_base_url

CONNECTIONS_PER_CLIENT = 16


class FatalAPIError(InputError):
    """The endpoint refused in a way no retry can fix (bad key, unknown model, bad base_url)."""


class APIDown(InputError):
    """``abort_after_consecutive_failures`` jobs in a row failed on the network or the server's limits:
    the stage stops sending instead of spending every item's retries on an endpoint that is down."""


class ItemRejected(Exception):
    """The API refused one request (400: a context over the model's window, say); other items go on."""


# statuses about one request, not the endpoint: 400 (OpenAI, vLLM: over the context window), 413 (a proxy
# in front of the server: nginx refuses bodies over client_max_body_size, 1 MB by default) and 422
# (TGI's "inputs tokens + max_new_tokens must be <= ..."). The item fails; the others go on.
ITEM_STATUSES = (400, 413, 422)


class InvalidReply(ValueError):
    """A reply that parsed but broke the job's invariants; its message is sent back on a re-ask."""


@dataclass
class Job:
    id: str
    key_input: dict  # what identifies the work: the item, not the prompt wording
    messages: list[dict]
    validate: Callable[[str], dict]  # raw reply text -> result; raises InvalidReply/ValueError
    schema_name: str = "reply"
    schema: dict | None = None


@dataclass
class Stats:
    jobs: int = 0
    api_calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    reasks: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # wall time spent waiting on the API (0 when everything came from the ledger)

    def cost(self, params: LLMParams, *, batch: bool = False) -> float:
        usd = (self.prompt_tokens * params.input_price_per_1m
               + self.completion_tokens * params.output_price_per_1m) / 1e6
        return usd / 2 if batch else usd  # the Batch API bills half

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class RateLimiter:
    """Token buckets for requests/min and tokens/min, refilled continuously.

    Each bucket holds one second's worth (at least one request's worth), so a run starts at the
    steady rate instead of bursting a whole minute's quota into the server's own limiter.
    """

    def __init__(self, requests_per_minute: int | None, tokens_per_minute: int | None):
        self.limits = [requests_per_minute, tokens_per_minute]
        self.level = [float("inf")] * 2  # start full: capped to the bucket size on first use
        self.stamp = time.monotonic()

    async def acquire(self, tokens: int) -> None:
        costs = [1, tokens]
        while True:
            now = time.monotonic()
            elapsed, self.stamp = now - self.stamp, now
            wait = 0.0
            for i, (limit, cost) in enumerate(zip(self.limits, costs)):
                if limit is None:
                    continue
                rate = limit / 60
                self.level[i] = min(max(rate, cost), self.level[i] + elapsed * rate)
                if self.level[i] < cost:
                    wait = max(wait, (cost - self.level[i]) / rate)
            if wait == 0.0:
                for i, (limit, cost) in enumerate(zip(self.limits, costs)):
                    if limit is not None:
                        self.level[i] -= cost
                return
            await asyncio.sleep(wait)


def estimate_tokens(messages: list[dict], max_tokens: int) -> int:
    """What a server counts against tokens/min: the prompt (~4 characters a token) plus max_tokens."""
    return sum(len(m["content"]) for m in messages) // 4 + max_tokens


def job_key(*, model: str, template: str, key_input: dict, gen: dict) -> str:
    payload = {"model": model, "template_sha256": hashlib.sha256(template.encode()).hexdigest(),
               "input": key_input, "gen": gen}
    return hashlib.sha256(dumps(payload).encode()).hexdigest()


class LedgerLocked(InputError):
    """Another process is writing this ledger (a stage left running, or a second `dvc repro`)."""


def _lock_holder(fd: int) -> int | None:
    """The PID holding a flock on ``fd``'s file, read from /proc/locks (Linux), else None."""
    st = os.fstat(fd)
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF" ("->" marks a waiter: skip those)
        if "->" not in fields and len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == ident:
            return int(fields[4])
    return None


class Ledger:
    """Append-only JSONL of finished jobs, written by one process at a time.

    Each line is handed to the OS before ``put`` returns, so it survives ``kill -9`` of the
    process; a background thread fsyncs after every write burst, so a power cut can lose at most
    the lines of the last few milliseconds (those calls are made again), never corrupt the file.
    Fsync stays off the event loop: at 64 calls in flight, fsyncing inline costs ~1 ms a call.
    A line torn by a crash (no trailing newline) is cut off when the ledger is opened.

    The ledger holds an exclusive lock (flock) while open: a second process (a stage that outlived
    the `dvc` that started it, and the rerun beside it) gets LedgerLocked naming the PID that holds
    it, instead of paying for the same calls twice. The lock goes with the process, however it ends.

    Every entry is scrubbed of the API key and any Authorization value before it is stored: a
    server may echo request headers into a reply, and the ledger goes to the DVC cache and remote.

    A write that fails (a full disk) raises OSError naming the ledger: every complete line stays,
    and a line torn by it is cut off on the next open. Batch bookkeeping lines are checked on open
    like job lines, so a malformed one is a file:line message.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, dict] = {}
        self.lines: dict[str, int] = {}  # key -> line number of its latest entry, for messages
        self._fh = open(self.path, "a", encoding="utf-8")
        try:
            self._lock()
            self._load()
        except BaseException:
            self._fh.close()
            raise
        self._dirty = threading.Event()
        self._closed = False
        self._sync_error: OSError | None = None
        self._syncer = threading.Thread(target=self._sync_loop, name="ledger-fsync", daemon=True)
        self._syncer.start()

    def _lock(self) -> None:
        import fcntl

        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _lock_holder(self._fh.fileno())
            who = f"process {pid}" if pid else "another process"
            stop = f"stop it (`kill {pid}`)" if pid else "stop it"
            raise LedgerLocked(
                f"{self.path} is in use by {who} (an earlier `gabarito` run still going, or a second "
                f"`dvc repro`). Wait for it to finish or {stop}, then rerun: what it has paid for is in the "
                "ledger and is not asked for again.") from None

    def _load(self) -> None:
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):
            os.truncate(self.path, len(complete))  # a line torn by a crash: its call is made again
        lineno = 0
        for lineno, line in enumerate(complete.decode("utf-8").split("\n"), 1):
            if line.strip():
                entry = self._parse(line, lineno)
                self.entries[entry["key"]] = entry
                self.lines[entry["key"]] = lineno
        self._next_line = max(lineno, 1)

    def _parse(self, line: str, lineno: int) -> dict:
        where = f"{self.path}:{lineno}"
        fix = "Remove that line (its call will be made again) and rerun."
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: corrupt ledger line ({exc.msg}). {fix}") from None
        if not isinstance(entry, dict):
            raise InputError(f"{where}: a ledger line must be a JSON object, this one is a "
                             f"{type(entry).__name__}. {fix}")
        if not isinstance(entry.get("key"), str) or not entry["key"]:
            raise InputError(f"{where}: ledger line without a 'key'. {fix}")
        if "kind" not in entry:  # a job's entry (batch bookkeeping lines carry a kind)
            status = entry.get("status")
            if status not in ("ok", "failed"):
                raise InputError(f"{where}: ledger line with status {status!r}, expected 'ok' or 'failed'. {fix}")
            if status == "ok" and not isinstance(entry.get("result"), dict):
                raise InputError(f"{where}: ledger line with status 'ok' but no 'result' object. {fix}")
            if status == "failed" and not (isinstance(entry.get("reason"), str)
                                           and isinstance(entry.get("raw", ""), str)):
                # the stage shows the reason and writes both to its failures file
                raise InputError(f"{where}: ledger line with status 'failed' but no 'reason' text (and 'raw', if "
                                 f"given, a text). {fix}")
        else:
            self._check_batch_line(entry, where)
        # a ledger written before replies were scrubbed may hold the key: it must not reach the outputs
        return openai_client.scrub_record(entry)

    # the Batch API's bookkeeping lines: kind -> (fields with their types, statuses the engine writes)
    _BATCH_LINES = {
        "batch": ({"batch_id": str, "keys": list, "status": str},
                  ("submitted", "completed", "failed", "expired", "cancelled")),
        "upload": ({"file_id": str, "keys": list, "status": str}, ("uploaded", "batched")),
        "batch_reply": ({"job_key": str, "raw": str, "finish": str}, None),
    }

    def _check_batch_line(self, entry: dict, where: str) -> None:
        """A batch/upload/batch_reply line with every field the engine reads, of the right type: a
        malformed one is a file:line message here, not a KeyError in the middle of a run."""
        kind = entry["kind"]
        if kind not in self._BATCH_LINES:
            raise InputError(f"{where}: ledger line of unknown kind {kind!r}, expected one of "
                             f"{', '.join(self._BATCH_LINES)} (or no kind, for a job). Remove that line and rerun.")
        fields, statuses = self._BATCH_LINES[kind]
        fix = "Remove that line and rerun (the items it recorded are then sent again)."
        bad = [f"'{name}' ({'a list of texts' if typ is list else 'a text'})" for name, typ in fields.items()
               if not isinstance(entry.get(name), typ)
               or (typ is list and not all(isinstance(k, str) for k in entry[name]))]
        if bad:
            raise InputError(f"{where}: {kind} line without a valid {', '.join(bad)}. {fix}")
        if statuses and entry["status"] not in statuses:
            raise InputError(f"{where}: {kind} line with status {entry['status']!r}, expected one of "
                             f"{', '.join(statuses)}. {fix}")

    def where(self, key: str) -> str:
        """"path:line" of the entry for ``key`` (for messages about a bad stored result)."""
        return f"{self.path}:{self.lines.get(key, '?')}"

    def _sync_loop(self) -> None:
        while True:
            self._dirty.wait()
            if self._closed:
                return
            self._dirty.clear()
            try:
                os.fsync(self._fh.fileno())
            except OSError as exc:  # reported by the next put or by close, naming the ledger
                self._sync_error = exc
                return

    def _named(self, exc: OSError) -> OSError:
        """``exc`` naming the ledger: a write() that hits a full disk names no file, and "no space
        left" must say which file could not take the line."""
        return OSError(exc.errno, exc.strerror, str(self.path))

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, entry: dict) -> None:
        if self._sync_error is not None:
            raise self._named(self._sync_error) from self._sync_error
        entry = openai_client.scrub_record(entry)
        try:
            self._fh.write(dumps(entry) + "\n")
            self._fh.flush()
        except OSError as exc:
            # what reached the file is every earlier line and maybe part of this one: the torn part is
            # cut off when the ledger is next opened, and only this call is made again
            raise self._named(exc) from exc
        self.entries[entry["key"]] = entry
        self.lines[entry["key"]] = self._next_line
        self._next_line += 1
        self._dirty.set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._dirty.set()
        self._syncer.join()
        try:
            try:
                if self._sync_error is not None:
                    raise self._sync_error
                self._fh.flush()
                os.fsync(self._fh.fileno())
            finally:
                self._fh.close()  # releases the lock, even when the last flush failed
        except OSError as exc:
            raise self._named(exc) from exc

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the error already raised (a full disk in put, say) is the one to report
            self.close()
        except OSError:
            pass


class Engine:
    def __init__(self, params: LLMParams, *, template: str, ledger: Ledger, client: Any = None,
                 progress: bool = True, backoff_base: float = 0.5, backoff_max: float = 30.0):
        self.params = params
        self.template = template
        self.ledger = ledger
        self.stats = Stats()
        self.progress = progress
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._client = client
        self._response_format = params.response_format
        self._limiter = RateLimiter(params.requests_per_minute, params.tokens_per_minute)
        self._bar = None
        self._batch = False
        self._down = asyncio.Event()  # the circuit breaker tripped: no new job, no further retry

    @property
    def gen(self) -> dict:
        p = self.params
        return {"temperature": p.temperature, "max_tokens": p.max_tokens}

    def key(self, job: Job) -> str:
        return job_key(model=self.params.model, template=self.template, key_input=job.key_input, gen=self.gen)

    def _make_client(self):
        import openai

        key, base_url = openai_client.credentials(self.params.base_url)
        # retries are ours (counted, jittered, Retry-After aware), so the client makes none
        return openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=self.params.timeout_s)

    def _format(self, job: Job) -> dict:
        if self._response_format == "json_schema" and job.schema is not None:
            return {"type": "json_schema",
                    "json_schema": {"name": job.schema_name, "schema": job.schema, "strict": True}}
        return {"type": "json_object"}

    async def _complete(self, client, messages: list[dict], job: Job) -> tuple[str, str]:
        """One chat completion with transient-error retries; returns (content, finish_reason).

        The content comes back scrubbed of the key and any Authorization value: a server that
        echoes request headers into its reply must not get them into results, ledger or logs.
        """
        import openai

        attempt = 0
        while True:
            await self._limiter.acquire(estimate_tokens(messages, self.params.max_tokens))
            try:
                # the client's low-level post: same auth, errors and connection pool as
                # client.chat.completions.create, without its per-call walk of typed params and
                # response models, which costs ~2 ms of CPU per call and caps throughput at 64 in flight
                resp = await client.post("/chat/completions", cast_to=dict, body={
                    "model": self.params.model, "messages": messages, "temperature": self.params.temperature,
                    "max_tokens": self.params.max_tokens, "response_format": self._format(job),
                })
                self.stats.api_calls += 1
                usage = resp.get("usage") or {}
                self.stats.prompt_tokens += usage.get("prompt_tokens") or 0
                self.stats.completion_tokens += usage.get("completion_tokens") or 0
                choice = resp["choices"][0]
                return (openai_client.scrub(choice["message"].get("content") or ""),
                        choice.get("finish_reason") or "")
            except openai.APIError as exc:
                status = openai_client.status_of(exc)
                if status in ITEM_STATUSES:
                    if (status == 400 and "response_format" in str(exc)
                            and self._format(job)["type"] == "json_schema"):
                        # server without JSON-schema support: fall back to plain JSON mode for all jobs
                        self._response_format = "json_object"
                        continue
                    # about this request (a context over the model's window, say): the item fails, the others go on
                    raise ItemRejected(openai_client.scrub(
                        f"the API rejected the request ({status}): {openai_client.error_detail(exc)}")) from None
                if not openai_client.transient(exc):  # 401, 403, 404: no retry, and no other item can succeed
                    raise FatalAPIError(self._fatal_message(exc, client)) from None
                if attempt >= self.params.max_retries or self._down.is_set():  # down: no more retries
                    raise
                attempt += 1
                await self._backoff(exc, attempt)

    def _fatal_message(self, exc: Exception, client) -> str:
        import openai

        if isinstance(exc, openai.NotFoundError):
            return (f"404 from the API: unknown model '{self.params.model}' or wrong base_url. Check "
                    "llm.model and llm.base_url / OPENAI_BASE_URL (it usually ends in /v1).")
        return openai_client.describe_error(exc, "the chat API", base_url=getattr(client, "base_url", None),
                                            settings="llm.base_url")

    async def _backoff(self, exc: Exception, attempt: int) -> None:
        """Wait before retry number ``attempt``: the server's Retry-After, else jittered exponential."""
        wait = openai_client.retry_after(exc)
        if wait is None:
            wait = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * (0.5 + random.random())
        self.stats.retries += 1
        await asyncio.sleep(wait)

    async def _batch_call(self, what: str, call: Callable[[], Any], recover: Callable[[], Any] | None = None) -> Any:
        """One Batch/Files API call, retried as chat calls are: a network blip during a day-long poll
        must not end the stage. What was submitted is in the ledger, so giving up loses nothing.

        ``recover`` looks, before each retry, for what a failed call may have done anyway (a 502 or a
        dropped connection does not say whether a batch was created): found, it is the result.
        """
        import openai

        try:
            return await openai_client.acreate_then_find(call, recover, retries=self.params.max_retries,
                                                         wait=self._backoff)
        except openai.APIError as exc:
            if not openai_client.transient(exc):
                raise FatalAPIError(openai_client.describe_error(exc, f"the Batch API refused {what}",
                                                                 settings="llm.base_url")) from None
            raise InputError(openai_client.scrub(
                f"the Batch API did not answer {what} after {self.params.max_retries} retries "
                f"({type(exc).__name__}: {exc}). Rerun the stage: batches already submitted are in the "
                "ledger and are polled again, not paid for twice.")) from None

    async def _run_job(self, client, job: Job, key: str, first: tuple[str, str] | None = None) -> dict:
        """Ask (or take ``first``, a reply that came from a batch), validate, re-ask on violations."""
        messages = list(job.messages)
        last_raw, reason = "", ""
        for ask in range(self.params.max_reasks + 1):
            if ask:
                self.stats.reasks += 1
            if ask == 0 and first is not None:
                raw, finish = first
            else:
                try:
                    raw, finish = await self._complete(client, messages, job)
                except FatalAPIError:
                    raise
                except ItemRejected as exc:
                    # final for this item, but a refused request is not billed: not cached, so a rerun
                    # after the item is fixed (or the server's limit raised) asks again
                    return {"key": key, "id": job.id, "status": "failed", "transient": True, "raw": last_raw,
                            "reason": str(exc)}
                except Exception as exc:  # retries exhausted on a transient error: not final, not cached
                    # "unreachable": what the circuit breaker counts (no answer, a 5xx or 429 after retries)
                    return {"key": key, "id": job.id, "status": "failed", "transient": True, "unreachable": True,
                            "raw": last_raw,
                            "reason": openai_client.scrub(f"gave up after {self.params.max_retries} retries: "
                                                          f"{type(exc).__name__}: {exc}")}
            last_raw = raw
            if finish == "length":
                reason = "reply truncated at max_tokens (finish_reason=length)"
            else:
                try:
                    result = job.validate(raw)
                    return {"key": key, "id": job.id, "status": "ok", "result": result}
                except (ValueError, InvalidReply) as exc:
                    reason = str(exc)
            messages = [*job.messages, {"role": "assistant", "content": raw},
                        {"role": "user", "content": f"Sua resposta é inválida: {reason}. Responda de novo "
                                                    "apenas com o objeto JSON pedido, corrigido."}]
        return {"key": key, "id": job.id, "status": "failed", "raw": last_raw, "reason": reason}

    def _partition(self, jobs: list[Job], retry_failed: bool) -> tuple[dict[str, dict], list[tuple[Job, str]]]:
        """(results already in the ledger, jobs still to do with their keys)."""
        results: dict[str, dict] = {}
        todo: list[tuple[Job, str]] = []
        for job in jobs:
            key = self.key(job)
            entry = self.ledger.get(key)
            if entry is not None and (entry["status"] == "ok" or not retry_failed):
                self.stats.cache_hits += 1
                results[job.id] = entry
            else:
                todo.append((job, key))
        return results, todo

    def _tick(self, n: int = 1) -> None:
        self._bar.update(n)
        self._bar.set_postfix(tokens=self.stats.prompt_tokens + self.stats.completion_tokens,
                              cost=f"${self.stats.cost(self.params, batch=self._batch):.4f}",
                              retries=self.stats.retries)

    async def _run_direct(self, client, todo: list[tuple[Job, str, tuple[str, str] | None]],
                          results: dict[str, dict]) -> None:
        """Run jobs through the chat API, ``concurrency`` at a time, each result into the ledger."""
        # httpx's pool scans every open connection for each request; past ~16 connections that
        # scan dominates the CPU, so high concurrency is spread over several clients
        extra = [] if self._client is not None else \
            [self._make_client() for _ in range((self.params.concurrency - 1) // CONNECTIONS_PER_CLIENT)]
        clients = [client, *extra]
        try:
            await self._run_direct_on(clients, todo, results)
        finally:
            for c in extra:
                await c.close()

    async def _run_direct_on(self, clients: list, todo: list[tuple[Job, str, tuple[str, str] | None]],
                             results: dict[str, dict]) -> None:
        sem = asyncio.Semaphore(self.params.concurrency)
        # set on a fatal error: jobs still queued on the semaphore must not spend another call
        stop = asyncio.Event()
        # the circuit breaker: jobs that gave up on transient errors in a row, and the last of them
        limit = self.params.abort_after_consecutive_failures
        streak: list[dict] = []
        skipped: list[str] = []

        async def one(i: int, job: Job, key: str, first) -> None:
            async with sem:
                if stop.is_set():
                    return
                if self._down.is_set():  # not attempted: not in the ledger, so the rerun asks it
                    skipped.append(job.id)
                    return
                try:
                    entry = await self._run_job(clients[i % len(clients)], job, key, first)
                except FatalAPIError:
                    stop.set()
                    raise
            # a reply that spells the key with a JSON escape ("\\u0073k-...") holds it only once parsed:
            # the result is scrubbed as the ledger line is, so the outputs hold what a rerun reads back
            entry = openai_client.scrub_record(entry)
            if not entry.get("transient"):  # a network blip must not fail the item for good
                self.ledger.put(entry)  # event-loop thread only: one writer, no duplicate lines
            results[job.id] = entry
            self._tick()
            if entry.get("unreachable"):
                streak.append(entry)
                if limit is not None and len(streak) >= limit:
                    self._down.set()
            else:  # any answer (a result, an invalid reply, a 400) means the API is there
                streak.clear()

        tasks = [asyncio.create_task(one(i, job, key, first)) for i, (job, key, first) in enumerate(todo)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        if self._down.is_set():
            raise APIDown(self._down_message(clients[0], streak, skipped, results))

    def _down_message(self, client, streak: list[dict], skipped: list[str], results: dict[str, dict]) -> str:
        where = redact_base_url(str(getattr(client, "base_url", "") or "the API"))
        given_up = sum(1 for e in results.values() if e.get("unreachable"))
        answered = sum(1 for e in results.values() if not e.get("transient"))
        last = streak[-1]
        return openai_client.scrub(
            f"the API at {where} looks down: {len(streak)} jobs in a row failed on the network or the server's "
            f"limits after their retries (llm.abort_after_consecutive_failures = "
            f"{self.params.abort_after_consecutive_failures}). Last error ({last['id']}): {_clip(last['reason'])}\n"
            f"Stopped sending: {len(skipped)} jobs were not attempted and {given_up} gave up; neither is recorded "
            f"as a failure, and the {answered} answered this run are in the ledger. Check the endpoint "
            "(llm.base_url / OPENAI_BASE_URL), the network, the provider's status page or your quota (429), "
            "then rerun: only what the ledger lacks is asked.")

    async def _run(self, jobs: list[Job], retry_failed: bool, batch: bool) -> dict[str, dict]:
        results, todo = self._partition(jobs, retry_failed)
        if not todo:
            return results
        self._down = asyncio.Event()  # each run starts with the breaker closed
        client = self._client or self._make_client()
        self._bar = _progress(len(jobs), initial=len(jobs) - len(todo), enabled=self.progress)
        started = time.monotonic()
        try:
            if batch:
                await self._run_batches(client, todo, results)
            else:
                await self._run_direct(client, [(job, key, None) for job, key in todo], results)
        finally:
            self.stats.seconds = round(time.monotonic() - started, 3)
            self._bar.close()
            if self._client is None:
                await client.close()
        return results

    def run(self, jobs: list[Job], *, retry_failed: bool = False, batch: bool = False) -> dict[str, dict]:
        """Run jobs (ledger first); return job id -> ledger entry (status ok with result, or failed).

        ``batch=True`` sends what the ledger lacks through the Batch API instead of chat calls.
        """
        ids = [j.id for j in jobs]
        if len(set(ids)) != len(ids):
            raise ValueError("job ids must be unique")
        self.stats.jobs = len(jobs)
        self._batch = batch
        results = asyncio.run(self._run(jobs, retry_failed, batch))
        self.stats.failures = sum(1 for e in results.values() if e["status"] != "ok")
        return results

    def metrics(self) -> dict:
        """What a stage writes about its calls: counts, tokens, estimated cost, seconds."""
        out = {k: v for k, v in self.stats.as_dict().items() if k != "jobs"}
        out["estimated_cost"] = round(self.stats.cost(self.params, batch=self._batch), 6)
        return out

    # --- Batch API -------------------------------------------------------------------------------
    def _batch_request(self, job: Job, key: str) -> bytes:
        body = {"model": self.params.model, "messages": job.messages, "temperature": self.params.temperature,
                "max_tokens": self.params.max_tokens, "response_format": self._format(job)}
        return (json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body},
                           ensure_ascii=False) + "\n").encode()

    def _split(self, todo: list[tuple[Job, str]]) -> list[list[tuple[Job, str, bytes]]]:
        """Groups within the per-batch request and byte limits."""
        groups: list[list[tuple[Job, str, bytes]]] = [[]]
        size = 0
        for job, key in todo:
            line = self._batch_request(job, key)
            if groups[-1] and (len(groups[-1]) >= self.params.batch_max_requests
                               or size + len(line) > self.params.batch_max_bytes):
                groups.append([])
                size = 0
            groups[-1].append((job, key, line))
            size += len(line)
        return [g for g in groups if g]

    def _batch_leftovers(self, todo: list[tuple[Job, str]]) -> tuple[dict, dict[str, list[str]], list]:
        """What earlier runs left in the ledger for ``todo``: (replies downloaded but not validated, by
        job key; batches submitted and not finished, batch id -> job keys; uploads not seen batched,
        as (file id, job keys))."""
        wanted = {key for _, key in todo}
        # replies a previous run downloaded but did not get to validate
        stored = {e["job_key"]: (e["raw"], e["finish"]) for e in self.ledger.entries.values()
                  if e.get("kind") == "batch_reply"}
        # batches a previous run submitted and did not finish: poll them instead of paying twice
        pending = {e["batch_id"]: e["keys"] for e in self.ledger.entries.values()
                   if e.get("kind") == "batch" and e["status"] == "submitted"}
        # files a previous run uploaded without seeing its batch created (it died, or the reply was
        # lost): the batch may exist; look for it before creating one
        orphans = [(e["file_id"], e["keys"]) for e in self.ledger.entries.values()
                   if e.get("kind") == "upload" and e["status"] == "uploaded" and set(e["keys"]) & wanted]
        return stored, pending, orphans

    async def _submit_batch(self, client, file_id: str, keys: list[str], pending: dict[str, list[str]], *,
                            orphan: bool) -> None:
        """Create the batch of an uploaded file (found rather than created again for an ``orphan``
        upload), record it in the ledger and add it to ``pending``."""
        async def created():
            # the openai client sends no idempotency key: a batch on this upload is this one
            page = await client.batches.list(limit=100)
            return next((b for b in page.data if b.input_file_id == file_id), None)

        batch = await created() if orphan else None
        if batch is None:
            batch = await self._batch_call("the creation of a batch", lambda: client.batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions",
                completion_window=self.params.batch_completion_window), recover=created)
        self.ledger.put({"key": f"batch:{batch.id}", "kind": "batch", "batch_id": batch.id,
                         "keys": keys, "status": "submitted"})
        self.ledger.put({"key": f"upload:{file_id}", "kind": "upload", "file_id": file_id, "keys": keys,
                         "status": "batched"})
        pending[batch.id] = keys

    async def _batch_replies(self, client, batch_id: str, batch, stored: dict) -> dict[str, tuple[str, str]]:
        """{job key: (raw reply, finish reason)} of a finished batch, recorded in the ledger; those in
        ``stored`` (an earlier run's) left out. FatalAPIError when the Batch API failed the whole batch."""
        if batch.status == "failed":
            # the Batch API refused the batch as a whole (its file, its model...): sending all of
            # it to the chat API at twice the price would most likely fail the same way
            self.ledger.put({"key": f"batch:{batch_id}", "kind": "batch", "batch_id": batch_id,
                             "keys": [], "status": "failed"})
            errors = getattr(batch, "errors", None)
            why = ("; ".join(f"{e.code}: {e.message}" for e in (getattr(errors, "data", None) or []))
                   or "no reason given")
            raise FatalAPIError(openai_client.scrub(
                f"the Batch API failed batch {batch_id} as a whole ({why}); nothing in it was answered "
                "or charged. Fix the cause and rerun (a new batch is sent), or set the stage's provider: "
                "openai to send the requests one by one."))
        replies = {}
        if batch.output_file_id:
            content = await self._batch_call(f"the download of batch {batch_id}'s replies",
                                             lambda: client.files.content(batch.output_file_id))
            for line in filter(str.strip, content.text.split("\n")):
                row = json.loads(line)
                response = row.get("response") or {}
                # a run that died after saving these replies and before marking the batch done
                # already has them (in leftovers, from the ledger): neither count nor use them twice
                if row.get("custom_id") in stored:
                    continue
                if response.get("status_code") == 200:
                    body = response["body"]
                    usage = body.get("usage") or {}
                    self.stats.prompt_tokens += usage.get("prompt_tokens", 0)
                    self.stats.completion_tokens += usage.get("completion_tokens", 0)
                    choice = body["choices"][0]
                    replies[row["custom_id"]] = (openai_client.scrub(choice["message"].get("content") or ""),
                                                 choice.get("finish_reason") or "")
        self.stats.api_calls += len(replies)
        for key, (raw, finish) in replies.items():  # recorded before the batch counts as done
            self.ledger.put({"key": f"reply:{key}", "kind": "batch_reply", "job_key": key,
                             "raw": raw, "finish": finish})
        return replies

    async def _run_batches(self, client, todo: list[tuple[Job, str]], results: dict[str, dict]) -> None:
        """Send ``todo`` through the Batch API, poll until every batch is done, then validate each reply
        as a direct call's; invalid replies, and jobs a batch did not answer, are asked directly.

        A rerun takes up what the ledger says an earlier one left (_batch_leftovers) before it sends
        anything new, so no job is paid for twice.
        """
        by_key = {key: job for job, key in todo}
        stored, pending, orphans = self._batch_leftovers(todo)
        leftovers: list[tuple[Job, str, tuple[str, str] | None]] = [
            (job, key, stored[key]) for job, key in todo if key in stored]
        submitted = {k for keys in [*pending.values(), *(keys for _, keys in orphans)] for k in keys}
        new = [(job, key) for job, key in todo if key not in submitted and key not in stored]

        for file_id, keys in orphans:
            await self._submit_batch(client, file_id, keys, pending, orphan=True)
        for i, group in enumerate(self._split(new)):
            data = b"".join(line for _, _, line in group)
            upload = await self._batch_call("the upload of a batch file", lambda: client.files.create(
                file=(f"gabarito-{i}.jsonl", data, "application/jsonl"), purpose="batch"))
            keys = [key for _, key, _ in group]
            self.ledger.put({"key": f"upload:{upload.id}", "kind": "upload", "file_id": upload.id, "keys": keys,
                             "status": "uploaded"})
            await self._submit_batch(client, upload.id, keys, pending, orphan=False)

        while pending:
            for batch_id in list(pending):
                batch = await self._batch_call(f"the status of batch {batch_id}",
                                               lambda: client.batches.retrieve(batch_id))
                if batch.status not in ("completed", "failed", "expired", "cancelled"):
                    continue
                replies = await self._batch_replies(client, batch_id, batch, stored)
                for key in pending.pop(batch_id):
                    job = by_key.get(key)
                    if job is None or key in stored:  # a job this run no longer has, or one already in hand
                        continue
                    if key in replies:
                        leftovers.append((job, key, replies[key]))
                    else:  # failed, expired or cancelled inside the batch: ask directly
                        self.stats.retries += 1
                        leftovers.append((job, key, None))
                self.ledger.put({"key": f"batch:{batch_id}", "kind": "batch", "batch_id": batch_id,
                                 "keys": [], "status": batch.status})
            if pending:
                await asyncio.sleep(self.params.batch_poll_interval_s)
        # every reply goes through the same validation; invalid ones are re-asked directly
        await self._run_direct(client, leftovers, results)


# a failing stage's message names this many failures (the failures file holds them all)
REASONS_SHOWN = 5


def check_failures(stage: str, failures: list[dict], jobs: int, max_share: float, *, setting: str,
                   retry: str) -> None:
    """Raise InputError when more than ``max_share`` of a stage's ``jobs`` LLM jobs failed.

    ``failures`` are {"id", "reason"} records in job order; the message names the count, the share,
    the first reasons with their ids, and what a rerun does (``retry``). An outage, a 429 storm or a
    wrong model fails every job: without this the stage would exit 0 with nothing in it, and DVC
    would cache that as done.
    """
    if not failures or len(failures) <= max_share * jobs:
        return
    shown = "\n  ".join(f"{f['id']}: {_clip(f['reason'])}" for f in failures[:REASONS_SHOWN])
    more = f"\n  ... and {len(failures) - REASONS_SHOWN} more" if len(failures) > REASONS_SHOWN else ""
    raise InputError(openai_client.scrub(
        f"{stage}: {len(failures)}/{jobs} LLM jobs failed ({len(failures) / jobs:.1%}, more than {setting} "
        f"= {max_share:.1%}). First reasons:\n  {shown}{more}\nWhat succeeded is in the ledger and is not "
        f"paid for again: fix the cause and rerun. {retry}"))


def retry_advice(stage: str, results: dict[str, dict], what: str = "items") -> str:
    """What a rerun of ``stage`` does with its failed ``results``, and the ways to ask again the
    ones the ledger keeps as final (replies that failed validation after their re-asks).

    ``dvc repro`` cannot pass --retry-failed, so the param is the way through DVC; the flag needs a
    ``dvc commit`` afterwards, since DVC did not run the stage itself.
    """
    failed = [e for e in results.values() if e["status"] != "ok"]
    final = sum(not e.get("transient") for e in failed)
    advice = []
    if len(failed) > final:
        advice.append(f"{what.capitalize()} that failed on the network, the API's limits or a refused request "
                      "are asked again on the next run.")
    if final:
        advice.append(
            f"{final} {what} failed validation after their re-asks and are kept in the ledger as final: to ask "
            f"them again set {stage}.retry_failed: true (`dvc exp run -S {stage}.retry_failed=true`, or edit "
            f"params.yaml and `dvc repro`), or run `gabarito {stage} ... --retry-failed` and then "
            f"`dvc commit {stage}`.")
    return " ".join(advice)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _progress(total: int, *, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="item", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, desc="llm")


def parse_json_object(raw: str) -> dict:
    """Strict JSON parsing of a reply (code fences tolerated); never eval."""
    text = raw.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidReply(f"a resposta não é JSON válido ({exc.msg} na posição {exc.pos})") from None
    if not isinstance(obj, dict):
        raise InvalidReply("a resposta deve ser um objeto JSON")
    return obj
