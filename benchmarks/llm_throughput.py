"""LLM engine throughput against a loopback OpenAI-compatible server with a fixed latency.

    .venv/bin/python benchmarks/llm_throughput.py [--latency 0.2] [--items 1920] [--ledger-size 35600]

Prints items/s sequentially and at concurrency 8, 32 and 64, each as a share of the ideal rate
(concurrency / latency), and the time of a no-change rerun over a ledger of --ledger-size entries
(the full Cosmos QA). The server runs in its own process so it does not share the client's GIL.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gabarito.llm import Engine, Ledger
from gabarito.params import LLMParams
from stages.translate import build_job

REPLY = json.dumps({"contexto": "Ontem eu fui ao mercado com a minha irmã e compramos pão para o café.",
                    "pergunta": "Por que o narrador foi ao mercado?",
                    "alternativas": ["Para comprar pão .", "Para ver um amigo .", "Para trabalhar .",
                                     "Nenhuma das alternativas acima ."]}, ensure_ascii=False)


def serve(latency: float, port_queue) -> None:
    from tests.fake_openai import FakeOpenAI, Reply

    server = FakeOpenAI(lambda req: Reply(content=REPLY, delay=latency))
    server.thread.start()
    port_queue.put(server.httpd.server_address[1])
    server.thread.join()


def items(n: int, offset: int = 0) -> list[dict]:
    return [{"id": f"bench-{offset + i}", "split": "train", "label": i % 4,
             "context": f"Yesterday I went to the market with my sister, trip number {offset + i}, to buy bread.",
             "question": "Why did the narrator go to the market?",
             "answers": ["To buy bread .", "To see a friend .", "To work .", "None of the above choices ."]}
            for i in range(n)]


def run(base_url: str, template: str, batch: list[dict], concurrency: int, ledger_path: Path) -> tuple[float, Engine]:
    import os

    os.environ["OPENAI_BASE_URL"] = base_url
    os.environ.setdefault("OPENAI_API_KEY", "bench")
    params = LLMParams(model="bench", concurrency=concurrency, max_retries=0, timeout_s=30)
    ledger = Ledger(ledger_path)
    engine = Engine(params, template=template, ledger=ledger, progress=False)
    start = time.perf_counter()
    results = engine.run([build_job(it, template) for it in batch])
    seconds = time.perf_counter() - start
    ledger.close()
    failed = [r for r in results.values() if r["status"] != "ok"]
    assert not failed, f"{len(failed)} failed, e.g. {failed[0]['reason']}"
    return seconds, engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--items", type=int, default=1920, help="items per concurrent run")
    ap.add_argument("--sequential-items", type=int, default=40)
    ap.add_argument("--ledger-size", type=int, default=35600)
    args = ap.parse_args()
    template = (ROOT / "prompts/translate.v2.txt").read_text(encoding="utf-8")

    queue = mp.Queue()
    proc = mp.Process(target=serve, args=(args.latency, queue), daemon=True)
    proc.start()
    base_url = f"http://127.0.0.1:{queue.get(timeout=30)}/v1"
    print(f"loopback server latency {args.latency * 1000:.0f} ms; ideal rate = concurrency / latency")
    print(f"{'concurrency':>11} {'items':>6} {'seconds':>8} {'items/s':>8} {'ideal':>7} {'of ideal':>8} {'x seq':>6}")
    seq_rate = None
    with tempfile.TemporaryDirectory() as tmp:
        for concurrency in (1, 8, 32, 64):
            n = args.sequential_items if concurrency == 1 else args.items
            seconds, _ = run(base_url, template, items(n, offset=concurrency * 100000), concurrency,
                             Path(tmp) / f"ledger-{concurrency}.jsonl")
            rate = n / seconds
            seq_rate = seq_rate or rate
            ideal = concurrency / args.latency
            print(f"{concurrency:>11} {n:>6} {seconds:>8.2f} {rate:>8.1f} {ideal:>7.1f} {rate / ideal:>8.1%} "
                  f"{rate / seq_rate:>6.1f}")

        # a no-change rerun over a full-size ledger: every job is a cache hit, no call is made
        big = items(args.ledger_size)
        ledger_path = Path(tmp) / "full.jsonl"
        engine = Engine(LLMParams(model="bench"), template=template, ledger=Ledger(ledger_path), progress=False)
        with open(ledger_path, "a", encoding="utf-8") as fh:
            for it in big:
                job = build_job(it, template)
                fh.write(json.dumps({"key": engine.key(job), "id": job.id, "status": "ok", "result": {
                    "context": "c", "question": "q", "answers": ["a", "b", "c", "d"]}}) + "\n")
        engine.ledger.close()
        start = time.perf_counter()
        seconds, engine = run("http://127.0.0.1:9/v1", template, big, 8, ledger_path)  # port 9: nothing listens
        total = time.perf_counter() - start
        print(f"no-change rerun over a {args.ledger_size}-entry ledger: {total:.2f} s "
              f"(cache hits {engine.stats.cache_hits}, api calls {engine.stats.api_calls})")
    proc.terminate()


if __name__ == "__main__":
    main()
