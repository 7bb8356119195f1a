"""DVC remotes end to end: real `dvc` in temporary git repositories, with `verify` on.

A small project (a file of a few MB, a folder of 200 small files, a one-stage dvc.yaml with a file
and a folder output) is pushed to the repository's default local remote and to S3 served by moto on
loopback, then pulled into a fresh `git clone`, which must match the original byte for byte. An S3
push interrupted part-way (killed, or failed by server errors) is finished by a second push that
uploads only what is missing. No network beyond 127.0.0.1, no real cloud config, no credentials on
disk: the fake AWS keys live in the subprocess environment only.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

from tests.s3server import FaultyProxy, MotoS3

# made at run time, so a hit in a file can only come from the environment leaking to disk
SECRET = "test-secret-" + uuid.uuid4().hex
REGION = "us-east-1"

SUMMARIZE = '''\
"""Stage of the test project: hash every input file, and cut the big one into shards."""
import hashlib, json, os, sys
src, out = sys.argv[1], sys.argv[2]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if not f.endswith((".dvc", ".gitignore")))
os.makedirs(os.path.join(out, "shards"), exist_ok=True)
with open(os.path.join(out, "summary.json"), "w") as fh:
    json.dump({os.path.relpath(p, src): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in files},
              fh, indent=1, sort_keys=True)
big = open(os.path.join(src, "big.bin"), "rb").read()
for i in range(4):
    with open(os.path.join(out, "shards", f"{i}.bin"), "wb") as fh:
        fh.write(big[i * len(big) // 4:(i + 1) * len(big) // 4])
'''

DVC_YAML = """\
stages:
  summarize:
    cmd: python summarize.py data out
    deps:
      - summarize.py
      - data/big.bin
      - data/many
      - data/notes.txt
    outs:
      - out/summary.json
      - out/shards
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The subprocess environment: a temp HOME, no user or system DVC/git/AWS config, fake keys."""
    home = tmp_path_factory.mktemp("home")
    (home / "dvc-global").mkdir()
    # the global config the dvc calls see: no analytics, no update check (no network either way)
    (home / "dvc-global" / "config").write_text("[core]\n    analytics = false\n    check_update = false\n")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DVC_", "GIT_", "XDG_"))}
    return {
        **keep,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
        "DVC_NO_ANALYTICS": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
        # no ~/.aws of the person running the tests; moto accepts any key
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,  # dvc-s3 probes the bucket's region unless this (or `region`) is set
    }


def run(env: dict[str, str], cmd: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def tree(root: Path) -> dict[str, str]:
    """sha256 of every file of a checkout, .git and .dvc (cache, tmp, config) aside."""
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] not in (".git", ".dvc"):
            out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def cache_objects(repo: Path) -> set[str]:
    """Relative names (`md5/ab/cdef...`) of the objects in the project's local cache."""
    root = repo / ".dvc" / "cache" / "files"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


OUTPUTS = {"data/big.bin", "data/notes.txt", "out/summary.json", *(f"out/shards/{i}.bin" for i in range(4))}


@pytest.fixture(scope="module")
def template(tmp_path_factory, env, repo_root) -> Path:
    """The test project, committed and reproduced once; each test works on a copy."""
    repo = tmp_path_factory.mktemp("template") / "repo"
    (repo / "data" / "many" / "sub").mkdir(parents=True)
    rng = random.Random(0)
    (repo / "data" / "big.bin").write_bytes(rng.randbytes(3 * 2**20))  # one PUT (multipart starts at 5 MB)
    (repo / "data" / "notes.txt").write_text("Notas de teste\n")
    for i in range(200):  # many small files of varied sizes, one empty, two with the same bytes
        sub = "sub/" if i % 3 == 0 else ""
        (repo / "data" / "many" / f"{sub}{i:03d}.txt").write_bytes(rng.randbytes(rng.randrange(1, 4096)))
    (repo / "data" / "many" / "empty.txt").write_bytes(b"")
    (repo / "data" / "many" / "copy_of_001.txt").write_bytes((repo / "data" / "many" / "001.txt").read_bytes())
    (repo / "summarize.py").write_text(SUMMARIZE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    run(env, ["git", "init", "-q", "-b", "main"], repo)
    run(env, ["dvc", "init", "-q"], repo)
    # the repository's own .dvc/config: its default local remote must work as shipped
    shutil.copy(repo_root / ".dvc" / "config", repo / ".dvc" / "config")
    run(env, ["dvc", "add", "-q", "data/big.bin", "data/notes.txt", "data/many"], repo)
    run(env, ["dvc", "repro", "-q"], repo)
    run(env, ["git", "add", "-A"], repo)
    run(env, ["git", "commit", "-qm", "project"], repo)
    assert OUTPUTS <= set(tree(repo)) and sum(p.startswith("data/many/") for p in tree(repo)) == 202
    return repo


@pytest.fixture
def repo(template, tmp_path) -> Path:
    dst = tmp_path / "repo"
    shutil.copytree(template, dst, symlinks=True)
    return dst


def clone_and_pull(env: dict[str, str], repo: Path, dest: Path) -> Path:
    """`git clone` (which brings .dvc/config and so the remote), `dvc pull`, check it is clean."""
    run(env, ["git", "clone", "-q", str(repo), str(dest)], repo.parent)
    assert not (dest / "data" / "big.bin").exists()  # outputs come from the remote, not git
    run(env, ["dvc", "pull"], dest)
    assert "up to date" in run(env, ["dvc", "status"], dest).stdout
    return dest


def assert_same_bytes(a: Path, b: Path) -> None:
    ta, tb = tree(a), tree(b)
    assert OUTPUTS <= set(ta)
    assert ta == tb, sorted(set(ta.items()) ^ set(tb.items()))[:10]


def assert_no_secret(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


def assert_listings_complete(repo: Path, keys: set[str]) -> None:
    """Every directory listing (.dir object) in `keys` comes with all the files it lists: dvc
    uploads a listing only after its files, so a partial push never looks like a whole folder."""
    for key in keys:
        if key.endswith(".dir"):
            entries = json.loads((repo / ".dvc" / "cache" / "files" / key).read_text())
            missing = [e["relpath"] for e in entries if f"md5/{e['md5'][:2]}/{e['md5'][2:]}" not in keys]
            assert not missing, f"{key} uploaded before {missing[:5]}"


# --- local remote -----------------------------------------------------------------------------


def test_default_local_remote_round_trip(env, repo):
    """The shipped `local` remote (../../gabarito-dvc-remote, a sibling of the checkout) works as
    is: push, push again (nothing to do), pull into a sibling clone, same bytes, clean status."""
    run(env, ["dvc", "remote", "modify", "local", "verify", "true"], repo)
    run(env, ["git", "commit", "-qam", "verify"], repo)
    remote = repo.parent / "gabarito-dvc-remote"
    pushed = run(env, ["dvc", "push"], repo).stdout
    assert remote.is_dir() and f"{len(cache_objects(repo))} files pushed" in pushed
    assert {p.relative_to(remote / "files").as_posix() for p in remote.rglob("*") if p.is_file()} == cache_objects(repo)
    assert "Everything is up to date" in run(env, ["dvc", "push"], repo).stdout
    clone = clone_and_pull(env, repo, repo.parent / "clone")
    assert_same_bytes(repo, clone)


def test_verify_refuses_a_corrupted_object_in_the_local_remote(env, repo):
    """With `verify true`, a pull re-hashes what it downloads: a remote object whose bytes no
    longer match its name is not checked out as if it were the real file."""
    run(env, ["dvc", "remote", "modify", "local", "verify", "true"], repo)
    run(env, ["git", "commit", "-qam", "verify"], repo)
    run(env, ["dvc", "push"], repo)
    md5 = hashlib.md5((repo / "data" / "big.bin").read_bytes()).hexdigest()
    obj = repo.parent / "gabarito-dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"bit rot" + obj.read_bytes()[7:])
    clone = repo.parent / "clone"
    run(env, ["git", "clone", "-q", str(repo), str(clone)], repo.parent)
    pulled = run(env, ["dvc", "pull"], clone, ok=False)
    assert pulled.returncode != 0, pulled.stdout + pulled.stderr
    big = clone / "data" / "big.bin"
    assert not big.exists() or big.read_bytes() == (repo / "data" / "big.bin").read_bytes()
    assert (clone / "data" / "notes.txt").read_bytes() == (repo / "data" / "notes.txt").read_bytes()


# --- S3 on loopback ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto():
    with MotoS3() as server:
        yield server
    assert not server.alive(), "moto server still answering after stop()"


@pytest.fixture
def bucket(moto):
    """A fresh bucket per test; boto3 here talks to moto only (explicit endpoint and keys)."""
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key=SECRET)
    name = "gabarito-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)

    def keys() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix="dvc/")
        return {o["Key"].removeprefix("dvc/files/") for page in pages for o in page.get("Contents", [])}

    return name, keys


def add_s3_remote(env: dict[str, str], repo: Path, bucket: str, endpoint: str) -> None:
    """What README tells a user to run, keys aside (they stay in the environment)."""
    run(env, ["dvc", "remote", "add", "-d", "s3remote", f"s3://{bucket}/dvc"], repo)
    run(env, ["dvc", "remote", "modify", "s3remote", "endpointurl", endpoint], repo)
    run(env, ["dvc", "remote", "modify", "s3remote", "verify", "true"], repo)
    run(env, ["git", "commit", "-qam", "s3 remote"], repo)
    config = (repo / ".dvc" / "config").read_text()
    assert f"url = s3://{bucket}/dvc" in config and "verify = true" in config
    assert SECRET not in config and "secret" not in config and "access_key" not in config
    assert not (repo / ".dvc" / "config.local").exists()


def test_s3_round_trip_with_verify(env, repo, moto, bucket):
    name, keys = bucket
    add_s3_remote(env, repo, name, moto.url)
    pushed = run(env, ["dvc", "push"], repo).stdout
    assert f"{len(cache_objects(repo))} files pushed" in pushed
    assert keys() == cache_objects(repo)
    assert "Everything is up to date" in run(env, ["dvc", "push"], repo).stdout
    clone = clone_and_pull(env, repo, repo.parent / "clone")
    assert_same_bytes(repo, clone)
    assert "in sync" in run(env, ["dvc", "status", "--cloud"], clone).stdout
    assert_no_secret(repo, clone)


@pytest.mark.parametrize("how", ["killed", "server_errors"])
def test_interrupted_s3_push_is_finished_by_a_second_push(env, repo, moto, bucket, how):
    """The first push stops after exactly N uploads (SIGKILL while blocked on upload N+1, or S3
    500s from then on); the bucket holds N objects and no directory listing (.dir) whose files are
    missing. A second push uploads only the rest, a third has nothing to do, a clone pulls it all."""
    name, keys = bucket
    n = 40
    with FaultyProxy(moto.url) as proxy:
        add_s3_remote(env, repo, name, proxy.url)
        total = cache_objects(repo)
        assert len(total) > n + 10
        if how == "killed":
            proxy.break_after(n, "stall")
            push = subprocess.Popen(["dvc", "push"], cwd=repo, env=env, start_new_session=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                assert proxy.wait_held(timeout=90), "push never reached the stalled upload"
            finally:
                os.killpg(push.pid, signal.SIGKILL)  # its own session: dvc and anything it started
                log = push.communicate(timeout=30)[0]
            assert push.returncode == -signal.SIGKILL, log
        else:
            proxy.break_after(n, "error")
            # botocore retries a 500 up to 5 times with exponential backoff: ~15 s for each of the
            # ~160 failing uploads. One attempt each keeps the test short; the outcome is the same
            first = run({**env, "AWS_MAX_ATTEMPTS": "1"}, ["dvc", "push"], repo, ok=False)
            log = first.stdout + first.stderr
            assert first.returncode != 0 and "failed to upload" in log, log
        partial = keys()
        assert len(partial) == n and partial < total
        assert_listings_complete(repo, partial)

        proxy.heal()
        second = run(env, ["dvc", "push"], repo).stdout
        assert proxy.puts == len(total) - n, second  # only what was missing
        assert keys() == total
        assert "Everything is up to date" in run(env, ["dvc", "push"], repo).stdout
        assert proxy.puts == len(total) - n  # the third push uploaded nothing

        clone = clone_and_pull(env, repo, repo.parent / "clone")  # through the (healed) proxy
        assert_same_bytes(repo, clone)


# --- make push: push, then check every object on its own -----------------------------------------

PUSH = [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "push.py")]


def remote_objects(remote: Path) -> set[str]:
    """Object names (`md5/ab/cdef...`) in a local remote, its temporary upload files aside."""
    root = remote / "files"
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and len(p.relative_to(root).parts) == 3 and "." not in p.name.removesuffix(".dir")}


def test_make_push_runs_the_checked_push(repo_root):
    recipe = subprocess.run(["make", "-n", "push", "-o", ".venv/bin/gabarito", "-o", "setup", "REMOTE=s3"],
                            cwd=repo_root, capture_output=True, text=True, check=True).stdout.split("\n")
    assert ".venv/bin/python scripts/push.py --remote s3" in recipe
    assert not any(line.strip().endswith("dvc push") for line in recipe)


def test_a_push_killed_mid_transfer_is_caught_then_finished(env, tmp_path):
    """SIGKILL lands while `dvc push -j 1` copies 1500 files: the check names what is missing (all of
    it, to the object), and `scripts/push.py` finishes the job."""
    repo, remote = tmp_path / "repo", tmp_path / "remote"
    (repo / "bulk").mkdir(parents=True)
    rng = random.Random(1)
    for i in range(1500):  # ~1.3 ms per file with one job: the push takes ~2 s, the kill lands after ~100
        (repo / "bulk" / f"{i:04d}.bin").write_bytes(rng.randbytes(16384))
    (repo / "notes.txt").write_text("uma nota\n")
    run(env, ["git", "init", "-q", "-b", "main"], repo)
    run(env, ["dvc", "init", "-q"], repo)
    run(env, ["dvc", "remote", "add", "-d", "local", str(remote)], repo)
    run(env, ["dvc", "add", "-q", "bulk", "notes.txt"], repo)
    run(env, ["git", "add", "-A"], repo)
    run(env, ["git", "commit", "-qm", "bulk"], repo)
    total = cache_objects(repo)
    assert len(total) == 1502

    push = subprocess.Popen(["dvc", "push", "-j", "1"], cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while len(remote_objects(remote) if (remote / "files").is_dir() else ()) < 100:
            assert push.poll() is None, "the push ended before the kill"
            time.sleep(0.005)
    finally:
        os.killpg(push.pid, signal.SIGKILL)
        push.wait(timeout=30)
    there = remote_objects(remote)
    assert 100 <= len(there) < len(total)  # killed mid-transfer
    missing = total - there

    checked = run(env, [*PUSH, "--check"], repo, ok=False)
    assert checked.returncode == 1
    assert f"FAILED: the remote 'local' lacks {len(missing)} of 1502 objects" in checked.stderr
    assert f"... and {len(missing) - 20} more" in checked.stderr  # 20 named, the rest counted
    assert remote_objects(remote) == there  # --check pushes nothing

    done = run(env, PUSH, repo)
    assert remote_objects(remote) == total
    assert "the remote 'local' holds all 1502 objects" in done.stderr
    assert "holds all 1502" in run(env, [*PUSH, "--check"], repo).stderr


def test_files_lost_from_the_remote_are_found_and_pushed_again(env, repo):
    """The remote loses files of folders it holds the listing of: `dvc push` and `dvc status --cloud`
    trust the listing and see nothing to do (what `make push` ran before); the checked push names them
    and uploads them."""
    run(env, ["dvc", "push"], repo)
    remote = repo.parent / "gabarito-dvc-remote"
    lost = {"data/many/005.txt", "data/many/sub/003.txt", "out/shards/2.bin"}
    for rel in lost:
        md5 = hashlib.md5((repo / rel).read_bytes()).hexdigest()
        (remote / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    assert len(remote_objects(remote)) == len(cache_objects(repo)) - 3
    assert "Everything is up to date" in run(env, ["dvc", "push"], repo).stdout
    assert "in sync" in run(env, ["dvc", "status", "--cloud"], repo).stdout

    fixed = run(env, PUSH, repo)
    report = fixed.stderr.split("pushing them again")[0]
    assert "lacks 3 of" in report and all(f"  {rel}\n" in report for rel in lost)
    assert remote_objects(remote) == cache_objects(repo)
    clone = clone_and_pull(env, repo, repo.parent / "clone")
    assert_same_bytes(repo, clone)


def test_what_neither_the_remote_nor_the_cache_holds_fails_by_name(env, repo):
    run(env, ["dvc", "push"], repo)
    md5 = hashlib.md5((repo / "data/many/007.txt").read_bytes()).hexdigest()
    (repo.parent / "gabarito-dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    (repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    failed = run(env, PUSH, repo, ok=False)
    assert failed.returncode == 1
    assert "1 of them are not in the local cache either:\n  data/many/007.txt\n" in failed.stderr
    assert "FAILED: the remote 'local' lacks 1 of" in failed.stderr and "data/many/007.txt" in failed.stderr
