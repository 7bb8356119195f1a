"""translate and synthesize as `dvc repro` runs them, in a temp git + dvc repository, against a real
loopback OpenAI-compatible server (tests/fake_openai.py):

- a SIGTERM that reaches only `dvc` takes the stage down with it (PR_SET_PDEATHSIG, and the
  ledger's lock refuses a second writer), so the rerun pays again only for the calls that were in
  flight at the kill;
- a server that echoes the request headers (Authorization included) into its replies gets the key
  into nothing stored: work tree, .dvc/cache, the dvc remote after `dvc push`, and the logs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.fake_openai import FakeOpenAI, Reply
from tests.integration.test_llm_engine import (
    item_number,
    make_item,
    request_payload,
    translation,
)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

DVC_YAML = {"stages": {
    "translate": {
        "cmd": "gabarito translate --items data/items.jsonl --translations data/tr --prompt prompts/translate.v2.txt "
               "--ledger ledger/translate.jsonl --out out/pt.jsonl --failures out/translate_failures.jsonl "
               "--metrics metrics/translate.json --no-progress",
        "deps": ["data/items.jsonl", "data/tr", "prompts/translate.v2.txt"],
        "params": ["translate"],
        "outs": ["out/pt.jsonl", "out/translate_failures.jsonl", {"ledger/translate.jsonl": {"persist": True}}],
        "metrics": [{"metrics/translate.json": {"cache": False}}],
    },
    "synthesize": {
        "cmd": "gabarito synthesize --pages data/pages.jsonl --qa-dir data/qa --prompt prompts/synthesize.v2.txt "
               "--ledger ledger/synthesize.jsonl --out out/pdf_qa.jsonl --rejected out/pdf_qa_rejected.jsonl "
               "--metrics metrics/synthesize.json --no-progress",
        "deps": ["data/pages.jsonl", "data/qa", "prompts/synthesize.v2.txt"],
        "params": ["synthesize"],
        "outs": ["out/pdf_qa.jsonl", "out/pdf_qa_rejected.jsonl", {"ledger/synthesize.jsonl": {"persist": True}}],
        "metrics": [{"metrics/synthesize.json": {"cache": False}}],
    },
}}

PAGE = ("Art. 1. O aluno deve cumprir cem horas de estágio supervisionado no curso de direito, "
        "com relatório final aprovado pelo orientador.")


def run(env: dict, cmd: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_env(tmp_path: Path, server: FakeOpenAI, key: str) -> dict[str, str]:
    home = tmp_path / "home"
    (home / "dvc-global").mkdir(parents=True)
    (home / "dvc-global" / "config").write_text("[core]\n    analytics = false\n    check_update = false\n")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "GIT_", "XDG_", "OPENAI_"))}
    return {**keep, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
            "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"), "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"), "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
            "OPENAI_API_KEY": key, "OPENAI_BASE_URL": server.base_url}


def make_repo(tmp_path: Path, env: dict, items: list[dict], params: dict) -> Path:
    repo = tmp_path / "repo"
    for sub in ("data/tr", "data/qa", "prompts"):
        (repo / sub).mkdir(parents=True)
    (repo / "data/items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    (repo / "data/tr/none.jsonl").write_text("")
    (repo / "data/qa/none.json").write_text("[]")
    (repo / "data/pages.jsonl").write_text(json.dumps(
        {"doc": "reg.pdf", "page": 1, "status": "ok", "method": "text", "quality": 1.0, "text": PAGE},
        ensure_ascii=False) + "\n")
    for name in ("translate.v2.txt", "synthesize.v2.txt"):
        shutil.copy(ROOT / "prompts" / name, repo / "prompts" / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    run(env, ["git", "init", "-q", "-b", "main"], repo)
    run(env, ["dvc", "init", "-q"], repo)
    run(env, ["dvc", "config", "core.analytics", "false"], repo)
    run(env, ["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], repo)
    run(env, ["git", "add", "-A"], repo)
    run(env, ["git", "commit", "-qm", "project"], repo)
    return repo


def llm(**over) -> dict:
    return {"model": "test-model", "max_retries": 1, "timeout_s": 10, "concurrency": 4, **over}


# --- SIGTERM to dvc alone ------------------------------------------------------------------------------
def stage_processes(repo: Path) -> list:
    """Live `gabarito translate` processes of this repository (zombies, already dead, aside)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if "translate" in cmd and "--ledger" in cmd and proc.info["cwd"] == str(repo) \
                    and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def paid_twice(answers: Counter) -> int:
    return sum(n - 1 for n in answers.values() if n > 1)


# dvc runs a stage as `$SHELL -c CMD` (/bin/sh when SHELL is unset, as under CI): bash execs the lone
# command, so the stage's parent is dvc; dash stays in between, so the stage must watch dvc itself
@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash", None])
def test_sigterm_to_dvc_alone_ends_the_stage_and_the_rerun_pays_at_most_the_calls_in_flight(tmp_path, shell):
    # 100 items at 4 in flight and 0.25 s a reply: ~6 s of calls, so a stage that outlived dvc would
    # still be running when the wait below ends (the stage's own death takes well under a second)
    n_items, concurrency = 100, 4
    answers: Counter = Counter()  # item -> replies the server produced (each one billed)
    lock = threading.Lock()

    def slow(req):
        n = item_number(request_payload(req))
        with lock:
            answers[n] += 1
        return Reply(content=json.dumps(translation(n), ensure_ascii=False), delay=0.25)

    with FakeOpenAI(slow) as server:
        env = make_env(tmp_path, server, "local")
        env.pop("SHELL", None)
        if shell:
            env["SHELL"] = shell
        repo = make_repo(tmp_path, env, [make_item(i) for i in range(n_items)],
                         {"translate": {"provider": "openai", "llm": llm(concurrency=concurrency)}})
        log = open(tmp_path / "dvc1.log", "w")
        dvc = subprocess.Popen(["dvc", "repro", "translate"], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while sum(answers.values()) < 12 and time.monotonic() < deadline and dvc.poll() is None:
            time.sleep(0.02)
        stages = stage_processes(repo)
        assert stages, "the stage was not running when dvc was to be stopped"
        dvc.send_signal(signal.SIGTERM)  # dvc only: not its process group, not the stage
        dvc.wait(timeout=60)
        log.close()
        deadline = time.monotonic() + 3
        while stage_processes(repo) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stage_processes(repo) == [], "gabarito translate outlived the dvc that started it"
        answered_before = sum(answers.values())
        assert answered_before < n_items, "the run finished before the kill: nothing was tested"
        time.sleep(0.5)  # requests the dead stage had in flight finish on the server's side

        server.responder = lambda req: _fast(req, answers, lock)
        rerun = run(env, ["dvc", "repro", "translate"], repo)
        out = [json.loads(ln) for ln in (repo / "out/pt.jsonl").read_text().splitlines()]
        assert [r["id"] for r in out] == [f"item{i:02d}" for i in range(n_items)], rerun.stdout
        twice = paid_twice(answers)
        print(f"\ncalls paid twice after SIGTERM to dvc: {twice} (concurrency {concurrency}; "
              f"{answered_before} replies before the kill, {sum(answers.values())} in all for {n_items} items)")
        assert set(answers) == set(range(n_items))
        assert twice <= concurrency


def _fast(req, answers: Counter, lock) -> Reply:
    n = item_number(request_payload(req))
    with lock:
        answers[n] += 1
    return Reply(content=json.dumps(translation(n), ensure_ascii=False))


# --- a server that echoes the key ----------------------------------------------------------------------
def count_hits(needles: list[bytes], *roots: Path, texts: tuple[str, ...] = ()) -> dict[str, int]:
    """path -> occurrences of any needle, over every file under ``roots`` and the captured ``texts``."""
    hits: dict[str, int] = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                n = sum(data.count(needle) for needle in needles)
                if n:
                    hits[str(path)] = n
    for i, text in enumerate(texts):
        n = sum(text.encode().count(needle) for needle in needles)
        if n:
            hits[f"<log {i}>"] = n
    return hits


def echoing(req: dict, headers: dict) -> Reply:
    """Every reply quotes the request headers, Authorization included: a valid translation (kept),
    an invalid one (a failure), grounded and ungrounded Q&A pairs (kept and rejected)."""
    dump = json.dumps(headers)
    if req["response_format"]["json_schema"]["name"] == "pares":
        pairs = [{"pergunta": f"Quantas horas de estágio? {dump}", "trecho": PAGE[8:80], "distratores": [],
                  "resposta": "O aluno deve cumprir cem horas de estágio supervisionado."},
                 {"pergunta": "Qual a cor do céu?", "resposta": f"Azul, conforme {dump}", "trecho": "",
                  "distratores": []}]
        return Reply(content=json.dumps({"pares": pairs}, ensure_ascii=False))
    n = item_number(request_payload(req))
    if n % 2:
        return Reply(content=f"não sei traduzir; cabeçalhos recebidos: {dump}")
    tr = translation(n)
    tr["contexto"] += f" (cabeçalhos recebidos pelo servidor: {dump})"
    return Reply(content=json.dumps(tr, ensure_ascii=False))


def test_an_echoed_key_reaches_nothing_stored_pushed_or_logged(tmp_path):
    # built at run time: a sentinel, not a literal any scanner would take for a key
    key = "".join(["gbt", "sentinel", secrets.token_hex(16)])
    with FakeOpenAI(echoing) as server:
        server.echo_headers = True
        env = make_env(tmp_path, server, key)
        items = [make_item(i) for i in range(4)]
        repo = make_repo(tmp_path, env, items, {
            "translate": {"provider": "openai", "llm": llm(max_reasks=0, max_failure_share=0.5)},
            "synthesize": {"provider": "openai", "multiple_choice": False, "validation_docs_share": 0.0,
                           "llm": llm(max_reasks=0)}})
        logs = [run(env, ["dvc", "repro"], repo), run(env, ["dvc", "push"], repo)]
        # the server did get the key, and echoed it: the test would catch a leak
        assert all({k.lower(): v for k, v in r["headers"].items()}["authorization"] == f"Bearer {key}"
                   for r in server.requests)
        assert len(server.requests) == 5
    texts = tuple(t for p in logs for t in (p.stdout, p.stderr))
    stored = [repo / "out/pt.jsonl", repo / "out/translate_failures.jsonl", repo / "out/pdf_qa.jsonl",
              repo / "out/pdf_qa_rejected.jsonl", repo / "ledger/translate.jsonl", repo / "ledger/synthesize.jsonl"]
    for path in stored:  # what was echoed is there, the key's value is not
        assert "authorization" in path.read_text(encoding="utf-8").lower(), path
    hits = count_hits([key.encode()], repo, tmp_path / "remote", texts=texts)
    print(f"\nsecret hits after dvc repro + dvc push (work tree, .git, .dvc/cache, remote, logs): "
          f"{sum(hits.values())}")
    assert hits == {}
    assert len(list((tmp_path / "remote").rglob("*"))) > 0  # the remote did get the outputs


# --- base_url: only a plain one reaches dvc.lock (issue 23, 3) -------------------------------------------------
def test_dvc_lock_gets_a_plain_base_url_and_never_one_that_carries_a_key(tmp_path):
    # built at run time: sentinels, not literals any scanner would take for keys
    secret = "".join(["gbt", "sentinel", secrets.token_hex(8)])
    path_key = "sk-" + "".join(["gbt", "Sentinel", secrets.token_hex(12)])
    answers: Counter = Counter()
    lock = threading.Lock()
    with FakeOpenAI(lambda req: _fast(req, answers, lock)) as server:
        env = make_env(tmp_path, server, "local")
        del env["OPENAI_BASE_URL"]  # the endpoint comes from params here, as dvc.lock records it
        base = server.base_url  # http://127.0.0.1:PORT/v1
        port = base.split(":")[2].split("/")[0]
        params = {"translate": {"provider": "openai", "llm": llm(base_url=base)}}
        repo = make_repo(tmp_path, env, [make_item(i) for i in range(2)], params)
        run(env, ["dvc", "config", "core.autostage", "true"], repo)  # dvc.lock goes to git's index, as users set it

        run(env, ["dvc", "repro", "translate"], repo)
        locked = yaml.safe_load((repo / "dvc.lock").read_text())
        assert locked["stages"]["translate"]["params"]["params.yaml"]["translate"]["llm"]["base_url"] == base
        lock_before = (repo / "dvc.lock").read_bytes()

        # each reaches this server (the openai client drops a fragment and sends ;params and a path's key on),
        # so each used to succeed and be written to dvc.lock; the x-api-key query was not on the deny-list
        refused = [f"{base}#token={secret}", f"{base};token={secret}", f"{base}?x-api-key={secret}",
                   f"http://127.0.0.1:{port}/{path_key}/v1", f"http://user:{secret}@127.0.0.1:{port}/v1",
                   f"{base}?subscription-key={secret}", f"http://127.0.0.1:{port}/api?code={secret}"]
        logs = []
        for url in refused:
            params["translate"]["llm"]["base_url"] = url
            (repo / "params.yaml").write_text(yaml.safe_dump(params))
            proc = run(env, ["dvc", "repro", "translate"], repo, ok=False)
            text = proc.stdout + proc.stderr
            assert proc.returncode != 0 and "translate.llm.base_url: Value error, base_url '" in text, text
            assert "is refused" in text and "OPENAI_BASE_URL" in text and "Traceback" not in text
            logs.append(text)
            assert (repo / "dvc.lock").read_bytes() == lock_before
        staged = run(env, ["git", "diff", "--cached", "--name-only"], repo).stdout
    (repo / "params.yaml").unlink()  # the one file the test itself wrote the keys into
    hits = count_hits([secret.encode(), path_key.encode()], repo, texts=tuple(logs))
    assert hits == {}, hits
    assert "params.yaml" not in staged
    assert sum(answers.values()) == 2  # the refused runs sent nothing
