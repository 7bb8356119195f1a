"""What every caller of an OpenAI-compatible API shares: the LLM engine (gabarito/llm.py, for translate
and synthesize) and hosted fine-tuning (gabarito/tools/openai_ft.py).

- ``credentials``: the key only ever from ``$OPENAI_API_KEY``; the endpoint from params (plain:
  gabarito.params.base_url_problem), else ``$OPENAI_BASE_URL`` (anything the client takes), else OpenAI.
- ``scrub`` / ``scrub_record``: the key's value (when long enough to be a secret), and any
  ``Authorization``/``Bearer``/``api-key`` value whatever its length, out of a text or a record
  before it is shown or stored. A server may echo request headers into an error
  body or even into a reply's content, and ledgers, failures files and logs go to the DVC cache
  and remote.
- ``describe_error``: one readable, secret-free message for an exception of the openai client.
- ``retry_after``: the server's ``Retry-After(-ms)``, in seconds.
- ``create_then_find`` / ``acreate_then_find``: a creation retried after a transient failure
  without paying twice. The client sends no idempotency key, and a 5xx or a dropped connection does
  not say whether the batch or job was created; so before each retry the caller's ``find`` looks
  for it.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Awaitable, Callable

from gabarito.io import AUTH_VALUE, BEARER, InputError
from gabarito.io import scrub as scrub_key
from gabarito.params import redact_base_url

KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"

def credentials(base_url: str | None, *, hint: str = "") -> tuple[str, str | None]:
    """(key, base_url) for a client: the key from ``$OPENAI_API_KEY`` only, the endpoint from
    ``base_url`` (params), else ``$OPENAI_BASE_URL``, else None (OpenAI)."""
    key = os.environ.get(KEY_ENV)
    if not key:
        raise InputError(
            f"{KEY_ENV} is not set. Export it in your shell or put it in a git-ignored .env file "
            "(for local servers such as Ollama, vLLM or LM Studio any value works, e.g. "
            f"{KEY_ENV}=local). The key is never read from params.yaml.{hint}")
    return key, base_url or os.environ.get(BASE_URL_ENV) or None


def scrub(text: str, key: str | None = None) -> str:
    """``text`` without the API key (the one given, else ``$OPENAI_API_KEY``), anything that looks
    like an OpenAI key, and the value of any Authorization/Bearer/api-key it quotes.

    The bare key is replaced everywhere only when it is long enough to be a secret
    (io.MIN_BARE_KEY_CHARS): a placeholder such as ``local`` is taken out where it stands as a
    credential ("Bearer local", "api-key: local"), not out of every word that contains it."""
    if not text:
        return text
    key = key if key is not None else os.environ.get(KEY_ENV)
    text = scrub_key(text, key)
    text = AUTH_VALUE.sub(r"\1***", text)
    if key:  # "Bearer <the key>", however short, even with no header name before it
        text = re.sub(r"(?i)\b(bearer\s+)" + re.escape(key) + r"(?![\w.~+/=-])", r"\1***", text)
    return BEARER.sub(r"\1***", text)


def scrub_record(obj: Any, key: str | None = None) -> Any:
    """``obj`` (a record: dicts, lists, strings) with every string scrubbed; other values as they are."""
    if isinstance(obj, str):
        return scrub(obj, key)
    if isinstance(obj, dict):
        return {k: scrub_record(v, key) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub_record(v, key) for v in obj]
    return obj


def status_of(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def transient(exc: Exception) -> bool:
    """Worth a retry: no connection, a timeout, or 408 (timeout), 409 (conflict), 429, 5xx."""
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
        return True
    status = status_of(exc)
    return isinstance(exc, openai.APIStatusError) and status is not None and (status in (408, 409, 429)
                                                                             or status >= 500)


def retry_after(exc: Exception, cap: float | None = None) -> float | None:
    """Seconds the server asked to wait (``Retry-After-Ms``, else ``Retry-After``), or None."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for header, scale in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            wait = max(0.0, float(headers[header]) / scale)
        except (KeyError, TypeError, ValueError):
            continue
        return wait if cap is None else min(cap, wait)
    return None


def error_detail(exc: Exception) -> str:
    """The API's own message for an HTTP error (its body's ``message``), else the exception's text."""
    body = getattr(exc, "body", None)  # the openai client keeps the reply's "error" object here
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"]).strip()
    return str(getattr(exc, "message", None) or exc).strip()


def describe_error(exc: Exception, doing: str, *, base_url: Any = None, key: str | None = None,
                   hints: dict[str, str] | None = None, settings: str = "base_url") -> str:
    """A readable, secret-free message: ``doing``, what the API said, and what to check.

    ``hints`` maps the error's ``param`` to the params.yaml knob behind it; ``settings`` names the
    params key of the endpoint (e.g. "translate.llm.base_url").
    """
    import openai

    detail = error_detail(exc) if isinstance(exc, openai.APIStatusError) else ""
    detail = f" {detail}" if detail else ""
    status = status_of(exc)
    if isinstance(exc, openai.AuthenticationError):
        # OpenAI's own 401 message quotes part of the key: it is not repeated
        msg = (f"{doing}: the API refused the key (401). Check {KEY_ENV}, and {BASE_URL_ENV} / {settings} "
               "if this is not OpenAI.")
    elif isinstance(exc, openai.PermissionDeniedError):
        msg = f"{doing}: access denied (403).{detail}"
    elif isinstance(exc, openai.NotFoundError):
        msg = f"{doing}: not found (404).{detail} Check {BASE_URL_ENV} / {settings} (it usually ends in /v1)."
    elif isinstance(exc, openai.RateLimitError):
        msg = f"{doing}: rate limited or out of quota (429), still after retries.{detail} Check your plan and billing."
    elif isinstance(exc, openai.APIStatusError) and status is not None and status < 500:
        msg = f"{doing}: the API rejected the request ({status}).{detail}" + (hints or {}).get(
            getattr(exc, "param", None) or "", "")
    elif isinstance(exc, openai.APIStatusError):
        msg = f"{doing}: the API failed ({status}), still after retries.{detail} Try again later."
    elif isinstance(exc, openai.APITimeoutError):
        msg = f"{doing}: the API did not answer in time, still after retries. Try again later."
    elif isinstance(exc, openai.APIConnectionError):
        # $OPENAI_BASE_URL is not checked as params' base_url is (it is where a URL that must carry more
        # goes): shown without its user, query, fragment, ;params and key-like parts
        where = redact_base_url(str(base_url)) if base_url else "the API"
        msg = (f"{doing}: could not reach {where}. Check the network and {BASE_URL_ENV} / {settings}.")
    else:
        msg = f"{doing}: {type(exc).__name__}: {exc}"
    return scrub(msg, key)


def create_then_find(create: Callable[[], Any], find: Callable[[], Any], *, retries: int,
                     wait: Callable[[Exception, int], float], sleep: Callable[[float], None] = time.sleep) -> Any:
    """``create()``; after a transient failure, wait, then return what ``find()`` finds (the failed
    call did its work after all) or try again, ``retries`` times. Other errors, and the last
    transient one when nothing is found, are raised. ``wait(exc, attempt)`` gives the seconds."""
    import openai

    for attempt in range(1, retries + 2):
        try:
            return create()
        except Exception as exc:
            if not transient(exc):
                raise
            if attempt <= retries:
                sleep(wait(exc, attempt))
            try:
                found = find()
            except openai.OpenAIError:  # cannot look: the next create decides
                found = None
            if found is not None:
                return found
            if attempt > retries:
                raise


async def acreate_then_find(create: Callable[[], Awaitable[Any]], find: Callable[[], Awaitable[Any]] | None, *,
                            retries: int, wait: Callable[[Exception, int], Awaitable[None]]) -> Any:
    """``create_then_find`` for the async client; ``find`` None: a plain retry of transient errors."""
    import openai

    for attempt in range(1, retries + 2):
        try:
            return await create()
        except Exception as exc:
            if not transient(exc):
                raise
            if attempt <= retries:
                await wait(exc, attempt)
            found = None
            if find is not None:
                try:
                    found = await find()
                except openai.OpenAIError:
                    found = None
            if found is not None:
                return found
            if attempt > retries:
                raise
