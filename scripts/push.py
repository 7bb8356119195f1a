"""`make push`: `dvc push`, then check that the remote holds every object, repair once, or fail naming what is missing.

    python scripts/push.py                 # the default remote (what `make push` runs)
    python scripts/push.py --remote s3     # another one
    python scripts/push.py --check         # only check, push nothing (exit 1 when something is missing)

Why not trust `dvc push` (and `dvc status --cloud`) alone: both take a directory's listing (its `.dir`
object) on the remote as proof that every file it lists is there too (dvc_data's status "assumes
directory contents" once the `.dir` exists). A push killed part-way, or a remote that lost files
since, then reads "Everything is up to date" / "in sync" while files are missing; a fresh clone's
`dvc pull` is the first to notice. Here every object is looked up on its own (the remote's
``oids_exist``: one `exists` per object on a local or SSH remote, a listing on S3 and friends).

The repair uploads exactly the missing objects through DVC's own remote object store (the same
upload `dvc push` uses: a temporary name, then a rename), files before the directory listings
that name them; a plain second `dvc push` would skip files whose listing is already there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict

SHOWN = 20  # missing paths named in a message; the rest are counted


def expected_objects(repo) -> tuple[dict[str, dict[str, str]], list[str]]:
    """What `dvc push` must put on the remote for the workspace: {hash_name: {oid: workspace path}}
    (a folder's files and its `.dir` listing), and the outputs that have no version in dvc.lock yet."""
    from dvc_data.hashfile.tree import Tree

    expected: dict[str, dict[str, str]] = defaultdict(dict)
    unbuilt = []
    for out in repo.index.outs:
        if not out.use_cache or not out.can_push or out.stage.is_repo_import:
            continue  # cache: false (metrics in git), push: false, imports (their source has them)
        if not out.hash_info:
            unbuilt.append(str(out))
            continue
        objs = expected[out.hash_name]
        if out.hash_info.isdir:
            try:
                tree = Tree.load(out.cache, out.hash_info)
            except FileNotFoundError:  # listing not in the local cache: reported as missing below
                tree = []
            for key, _, hash_info in tree:
                objs.setdefault(hash_info.value, f"{out}/{'/'.join(key)}")
        objs[out.hash_info.value] = str(out)
    return expected, unbuilt


def missing_on(odb, objs: dict[str, str], jobs: int | None) -> dict[str, str]:
    """The objects of ``objs`` the object store ``odb`` does not hold, each looked up on its own."""
    present = set(odb.oids_exist(sorted(objs), jobs=jobs))
    return {oid: path for oid, path in objs.items() if oid not in present}


def describe(missing: dict[str, str]) -> str:
    paths = sorted(missing.values())
    more = f"\n  ... and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return "\n".join(f"  {p}" for p in paths[:SHOWN]) + more


def upload_order(missing: dict[str, str]) -> list[str]:
    """Files first, directory listings last: a remote never holds a listing whose files are not there
    yet, so a pull during the repair fails for that folder instead of checking out half of it."""
    return sorted(missing, key=lambda oid: (oid.endswith(".dir"), oid))


def upload(odb, cache, oids: list[str]) -> list[str]:
    """Upload ``oids`` from the local cache to ``odb``; return those the local cache does not hold."""
    absent = [oid for oid in oids if not cache.exists(oid)]
    for oid in oids:
        if oid not in absent:
            odb.add(cache.oid_to_path(oid), cache.fs, oid, check_exists=False)
    return absent


def check(repo, remote: str | None, jobs: int | None) -> tuple[dict[str, dict[str, str]], list[str], int]:
    """Missing objects per hash name, unbuilt outputs, and how many objects were checked."""
    expected, unbuilt = expected_objects(repo)
    missing = {}
    for hash_name, objs in expected.items():
        odb = repo.cloud.get_remote_odb(remote, "push", hash_name=hash_name)
        missing[hash_name] = missing_on(odb, objs, jobs)
    return missing, unbuilt, sum(len(objs) for objs in expected.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-r", "--remote", help="DVC remote (default: the repository's default remote)")
    parser.add_argument("-j", "--jobs", type=int, help="parallel transfers, passed to dvc push")
    parser.add_argument("--check", action="store_true", help="check only: push nothing")
    args = parser.parse_args(argv)

    from dvc.cachemgr import LEGACY_HASH_NAMES
    from dvc.repo import Repo

    say = lambda msg: print(f"[push] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    pushed_rc = 0
    if not args.check:
        cmd = ["dvc", "push", *(["-r", args.remote] if args.remote else []), *(["-j", str(args.jobs)] if args.jobs else [])]
        pushed_rc = subprocess.run(cmd).returncode
        if pushed_rc:
            say(f"`{' '.join(cmd)}` failed (exit {pushed_rc}); checking what reached the remote")

    with Repo(".") as repo:
        name = args.remote or repo.config["core"].get("remote") or "(default)"
        missing, unbuilt, total = check(repo, args.remote, args.jobs)
        count = sum(len(m) for m in missing.values())
        if count and not args.check:
            say(f"the remote '{name}' lacks {count} of {total} objects after the push:\n{describe(_merge(missing))}\n"
                "pushing them again")
            absent = {}
            for hash_name, objs in missing.items():
                odb = repo.cloud.get_remote_odb(args.remote, "push", hash_name=hash_name)
                cache = repo.cache.legacy if hash_name in LEGACY_HASH_NAMES else repo.cache.repo
                for oid in upload(odb, cache, upload_order(objs)):
                    absent[oid] = objs[oid]
            if absent:
                say(f"{len(absent)} of them are not in the local cache either:\n{describe(absent)}\n"
                    "build them (`dvc repro`) or `dvc pull` them from a remote that has them, then push again")
            missing, unbuilt, total = check(repo, args.remote, args.jobs)
            count = sum(len(m) for m in missing.values())

    for out in unbuilt:
        say(f"{out}: no version in dvc.lock, so nothing to push; run `dvc repro` first")
    if count:
        say(f"FAILED: the remote '{name}' lacks {count} of {total} objects:\n{describe(_merge(missing))}\n"
            "a fresh clone's `dvc pull` would miss these. Check the remote's space and permissions, and run "
            "`make push` again.")
        return 1
    say(f"the remote '{name}' holds all {total} objects of the workspace's outputs (each one checked)")
    return 0 if not unbuilt else 1


def _merge(missing: dict[str, dict[str, str]]) -> dict[str, str]:
    return {oid: path for objs in missing.values() for oid, path in objs.items()}


if __name__ == "__main__":
    sys.exit(main())
