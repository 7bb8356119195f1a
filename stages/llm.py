"""One engine for every LLM call the pipeline makes (translate and synthesize share it).

- Talks to any OpenAI-compatible Chat Completions endpoint through the official ``openai`` client:
  OpenAI, vLLM, Ollama, LM Studio. ``base_url`` comes from params or ``$OPENAI_BASE_URL``; the key
  only ever from ``$OPENAI_API_KEY`` (it is never logged, cached or written anywhere).
- Runs calls concurrently under a semaphore, retries transient failures (connection errors,
  timeouts, 408/409/429/5xx) with exponential backoff and jitter, honouring ``Retry-After``, and
  stops the stage at once on 400/401/403/404, which no retry can fix.
- Asks for JSON (a JSON schema where supported) and validates each reply with the caller's
  validator, never ``eval``. An invalid reply is re-asked with the validation error, up to
  ``max_reasks`` times; after that the job is recorded as a failure with its raw reply.
- Every finished job goes to an append-only, fsynced ledger keyed by a hash of (model, prompt
  template, input, generation params). A rerun, or a run after ``kill -9``, makes no call for
  anything already in the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stages.io import InputError, dumps
from stages.params import LLMParams


class FatalAPIError(InputError):
    """The endpoint refused in a way no retry can fix (bad key, unknown model, bad base_url)."""


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

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def job_key(*, model: str, template: str, key_input: dict, gen: dict) -> str:
    payload = {"model": model, "template_sha256": hashlib.sha256(template.encode()).hexdigest(),
               "input": key_input, "gen": gen}
    return hashlib.sha256(dumps(payload).encode()).hexdigest()


class Ledger:
    """Append-only JSONL of finished jobs; each line is flushed and fsynced before it counts.

    A line torn by a crash (no trailing newline) is cut off when the ledger is opened.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            raw = self.path.read_bytes()
            complete = raw[: raw.rfind(b"\n") + 1]
            if len(complete) != len(raw):
                with open(self.path, "r+b") as fh:
                    fh.truncate(len(complete))
            for line in complete.decode("utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.entries[entry["key"]] = entry
        self._fh = open(self.path, "a", encoding="utf-8")

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, entry: dict) -> None:
        self._fh.write(dumps(entry) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.entries[entry["key"]] = entry

    def close(self) -> None:
        self._fh.close()


def resolve_client_settings(params: LLMParams) -> tuple[str, str | None]:
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise InputError(
            "OPENAI_API_KEY is not set. Export it in your shell or put it in a git-ignored .env file "
            "(for local servers such as Ollama, vLLM or LM Studio any value works, e.g. "
            "OPENAI_API_KEY=local). The key is never read from params.yaml."
        )
    base_url = params.base_url or os.environ.get("OPENAI_BASE_URL") or None
    return key, base_url


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


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

    @property
    def gen(self) -> dict:
        p = self.params
        return {"temperature": p.temperature, "max_tokens": p.max_tokens}

    def key(self, job: Job) -> str:
        return job_key(model=self.params.model, template=self.template, key_input=job.key_input, gen=self.gen)

    def _make_client(self):
        import openai

        key, base_url = resolve_client_settings(self.params)
        # retries are ours (counted, jittered, Retry-After aware), so the client makes none
        return openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=self.params.timeout_s)

    def _format(self, job: Job) -> dict:
        if self._response_format == "json_schema" and job.schema is not None:
            return {"type": "json_schema",
                    "json_schema": {"name": job.schema_name, "schema": job.schema, "strict": True}}
        return {"type": "json_object"}

    async def _complete(self, client, messages: list[dict], job: Job) -> tuple[str, str]:
        """One chat completion with transient-error retries; returns (content, finish_reason)."""
        import openai

        attempt = 0
        while True:
            try:
                resp = await client.chat.completions.create(
                    model=self.params.model, messages=messages, temperature=self.params.temperature,
                    max_tokens=self.params.max_tokens, response_format=self._format(job),
                )
                self.stats.api_calls += 1
                if resp.usage is not None:
                    self.stats.prompt_tokens += resp.usage.prompt_tokens or 0
                    self.stats.completion_tokens += resp.usage.completion_tokens or 0
                choice = resp.choices[0]
                return choice.message.content or "", choice.finish_reason or ""
            except openai.BadRequestError as exc:
                if "response_format" in str(exc) and self._format(job)["type"] == "json_schema":
                    # server without JSON-schema support: fall back to plain JSON mode for all jobs
                    self._response_format = "json_object"
                    continue
                raise FatalAPIError(f"the API rejected the request (400): {exc.message}") from None
            except openai.AuthenticationError:
                raise FatalAPIError("the API refused the key (401): check OPENAI_API_KEY.") from None
            except openai.PermissionDeniedError as exc:
                raise FatalAPIError(f"the API denied access (403): {exc.message}") from None
            except openai.NotFoundError:
                raise FatalAPIError(
                    f"404 from the API: unknown model '{self.params.model}' or wrong base_url. Check "
                    "llm.model and llm.base_url / OPENAI_BASE_URL (it usually ends in /v1)."
                ) from None
            except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                    openai.InternalServerError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                if status is not None and status not in (408, 409, 429) and status < 500:
                    raise FatalAPIError(f"the API answered {status}: {exc}") from None
                if attempt >= self.params.max_retries:
                    raise
                wait = _retry_after(exc)
                if wait is None:
                    wait = min(self.backoff_max, self.backoff_base * 2 ** attempt) * (0.5 + random.random())
                attempt += 1
                self.stats.retries += 1
                await asyncio.sleep(wait)

    async def _run_job(self, client, job: Job, key: str) -> dict:
        messages = list(job.messages)
        last_raw, reason = "", ""
        for ask in range(self.params.max_reasks + 1):
            if ask:
                self.stats.reasks += 1
            try:
                raw, finish = await self._complete(client, messages, job)
            except FatalAPIError:
                raise
            except Exception as exc:  # retries exhausted on a transient error
                return {"key": key, "id": job.id, "status": "failed", "raw": last_raw,
                        "reason": f"gave up after {self.params.max_retries} retries: {type(exc).__name__}: {exc}"}
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

    async def _run(self, jobs: list[Job], retry_failed: bool) -> dict[str, dict]:
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
        if not todo:
            return results
        client = self._client or self._make_client()
        sem = asyncio.Semaphore(self.params.concurrency)
        # set on a fatal error: jobs still queued on the semaphore must not spend another call
        stop = asyncio.Event()
        bar = _progress(len(jobs), initial=len(jobs) - len(todo), enabled=self.progress)

        async def one(job: Job, key: str) -> None:
            async with sem:
                if stop.is_set():
                    return
                try:
                    entry = await self._run_job(client, job, key)
                except FatalAPIError:
                    stop.set()
                    raise
            self.ledger.put(entry)  # event-loop thread only: one writer, no duplicate lines
            results[job.id] = entry
            bar.update(1)
            bar.set_postfix(tokens=self.stats.prompt_tokens + self.stats.completion_tokens,
                            retries=self.stats.retries)

        tasks = [asyncio.create_task(one(job, key)) for job, key in todo]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            bar.close()
            if self._client is None:
                await client.close()
        return results

    def run(self, jobs: list[Job], *, retry_failed: bool = False) -> dict[str, dict]:
        """Run jobs (ledger first); return job id -> ledger entry (status ok with result, or failed)."""
        ids = [j.id for j in jobs]
        if len(set(ids)) != len(ids):
            raise ValueError("job ids must be unique")
        self.stats.jobs = len(jobs)
        started = time.monotonic()
        results = asyncio.run(self._run(jobs, retry_failed))
        self.seconds = time.monotonic() - started
        self.stats.failures = sum(1 for e in results.values() if e["status"] != "ok")
        return results


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
