"""`make back REV=...`: go back to the params, dvc.lock and metrics of a commit, and to its outputs.

    python scripts/back.py HEAD                # drop uncommitted experiments (the way back in docs/reproducibility.md)
    python scripts/back.py HEAD~2              # the run two commits ago
    python scripts/back.py v1 --paths params.yaml dvc.lock metrics

1. `git checkout REV -- PATHS` (params.yaml, dvc.lock, metrics).
2. `dvc fetch`: what the default remote has of those outputs comes into the cache.
3. `dvc checkout` of the outputs whose recorded version is now in the cache, and only those:
   `dvc checkout` (with or without --allow-missing) deletes the workspace copy of an output it cannot
   restore, and fails, so on a clone whose cache and remote lack an output nothing would be left.
   Persistent outputs that are there (the API ledgers, training checkpoints) are left as they are:
   they hold paid-for or in-progress work newer than any commit, which the stages reuse.
   Before any of this, outputs that differ from dvc.lock and are in no cache stop it (--force drops them).
4. `dvc repro` rebuilds the rest. What it rebuilds is bit-identical to the recorded version when the
   stage is deterministic on any machine; training is not (its floats depend on the CPU, BLAS and the
   thread count), so a retrained adapter gets this machine's hash in dvc.lock, and the message says so.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

PATHS = ["params.yaml", "dvc.lock", "metrics"]


def say(msg: str) -> None:
    print(f"[back] {msg}", file=sys.stderr, flush=True)


def in_cache(out) -> bool:
    """The recorded version of ``out`` is whole in the local cache (a folder: its listing and every file)."""
    from dvc_data.hashfile.tree import Tree

    cache = out.cache
    if not cache.exists(out.hash_info.value):
        return False
    if not out.hash_info.isdir:
        return True
    try:
        tree = Tree.load(cache, out.hash_info)
    except (FileNotFoundError, ValueError):
        return False
    return all(cache.exists(hash_info.value) for _, _, hash_info in tree)


def kept_as_is(out) -> bool:
    """A persistent output that is there (the ledger of paid API calls, training checkpoints) is left as
    it is: it holds work newer than any commit, and the stages reuse it rather than redo it."""
    return bool(out.persist) and out.exists


def unsaved(repo) -> list[str]:
    """Outputs whose workspace copy differs from dvc.lock and is in no cache: checking out another
    version would destroy it (a run killed before DVC committed it, a hand edit)."""
    lost = []
    for out in repo.index.outs:
        if not out.use_cache or kept_as_is(out) or not out.exists or not out.hash_info:
            continue
        if out.workspace_status() and not out.cache.exists(out.get_hash().value):
            lost.append(str(out))
    return sorted(lost)


def split_outputs(repo) -> tuple[list[str], list[str]]:
    """(outputs whose recorded version the cache holds, outputs it does not), cached outputs only;
    persistent outputs that are there are neither."""
    restorable, lost = [], []
    for out in repo.index.outs:
        if not out.use_cache or not out.hash_info or kept_as_is(out):
            continue
        (restorable if in_cache(out) else lost).append(str(out))
    return sorted(restorable), sorted(lost)


def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if check and proc.returncode:
        say(f"`dvc {' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        sys.exit(proc.returncode)
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rev", nargs="?", default="HEAD", help="git revision to go back to (default HEAD)")
    parser.add_argument("--paths", nargs="+", default=PATHS, help="files git restores (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="discard outputs that are in no cache")
    args = parser.parse_args(argv)

    from dvc.repo import Repo

    # before anything is touched: a half-switched workspace is worse than no switch at all
    with Repo(".") as repo:
        at_risk = unsaved(repo)
    if at_risk and not args.force:
        say(f"not going back: {', '.join(at_risk)} differ from dvc.lock and are in no cache, so going back "
            "would delete them. Keep them with `dvc commit` (then `make push`), or discard them with "
            "`python scripts/back.py REV --force` (make back REV=... FORCE=1). Nothing was changed.")
        return 1

    paths = [p for p in args.paths
             if subprocess.run(["git", "cat-file", "-e", f"{args.rev}:{p}"], capture_output=True).returncode == 0]
    if subprocess.run(["git", "checkout", args.rev, "--", *paths]).returncode:
        return 1
    say(f"git: {' '.join(paths)} as of {args.rev}")

    with Repo(".") as repo:
        has_remote = bool(repo.config["core"].get("remote"))
    if has_remote:
        fetched = dvc("fetch", check=False)
        if fetched.returncode:  # objects the remote lacks: expected on another machine, handled below
            say("the remote lacks part of it (dvc fetch: " + (fetched.stderr.strip().splitlines() or ["?"])[0] + ")")

    with Repo(".") as repo:
        restorable, lost = split_outputs(repo)
        recorded = {str(o): o.hash_info.value for o in repo.index.outs if str(o) in lost}
    if restorable:
        dvc("checkout", "--force", *restorable)  # what was unsaved was named above and given up by --force
        say(f"restored from the cache{' and the remote' if has_remote else ''}: {', '.join(restorable)}")
    if not lost:
        say("done: every output is the recorded version")
        return 0
    say(f"in no cache{' nor the remote' if has_remote else ''}: {', '.join(lost)}; rebuilding with `dvc repro`")
    if subprocess.run(["dvc", "repro"]).returncode:
        say("`dvc repro` failed: see above.")
        return 1
    with Repo(".") as repo:
        rebuilt = {str(o): o.hash_info.value for o in repo.index.outs if str(o) in lost}
    differ = sorted(name for name in lost if rebuilt.get(name) != recorded[name])
    same = sorted(set(lost) - set(differ))
    if same:
        say(f"rebuilt bit for bit as recorded in {args.rev}: {', '.join(same)}")
    if differ:
        say(f"rebuilt with other bytes than recorded in {args.rev}: {', '.join(differ)} (dvc.lock now holds "
            "this machine's version; `git diff dvc.lock metrics` shows it). Training is bit for bit "
            "reproducible on one machine only: its floats depend on the CPU, BLAS and the thread count. To "
            "get the recorded files, `dvc push` them from the machine that made them (make push) and run "
            "this again; or commit this machine's version.")
    return 0

if __name__ == "__main__":
    sys.exit(main())
