"""Qindex semantic search: embedding throughput and search latency by mode.

    python -m benchmarks.qindex_semantic [--documents 5000] [--queries 200] [--cluster]

Documents are English notes generated from twelve everyday topics (travel, cooking,
taxes, car repairs, …): a title and three to six sentences each, drawn from the topic's
phrases, owned by 10 identities. They go in through `QindexService.index_documents`,
then the embedder (`embed_pending`, batches of 128) gives each its vector with the
local all-MiniLM-L6-v2 model on the CPU: documents per second.

Then `--queries` searches, one after another, through `QindexService.search`, in each
mode — `text` (full text, the yardstick), `semantic` (the query's vector against every
readable document's, one matrix product) and `hybrid` (both, fused) — as two callers:
an identity owning a tenth of the documents, and the node's operator, who may read all
of them (the worst case for semantic search, which scores every readable document).
Queries are short phrases about the topics, mostly without the documents' words; a
query counts as answered right when its best hit is a note of its topic.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.qindex.models import DocumentIn
from anarq.qindex.semantic import Embedder
from anarq.qindex.service import QindexService, SearchQuery
from benchmarks._nodes import latency_summary, open_node

OWNERS = 10
MODES = ("text", "semantic", "hybrid")
TOPICS: dict[str, list[str]] = {
    "Hiking trip": [
        "We walked along the ridge above the valley",
        "the glacier shone under a clear sky",
        "our boots were soaked after crossing the stream",
        "the hut served soup to tired climbers",
        "we reached the summit before noon",
    ],
    "Sourdough baking": [
        "the starter doubled overnight on the counter",
        "rye flour gives the loaf a darker crumb",
        "the dough rested in the fridge for a day",
        "bake it in a hot cast iron pot",
        "score the top before it goes in the oven",
    ],
    "Tax return": [
        "the quarterly VAT figures are due at the end of the month",
        "payroll deductions were filed with the revenue office",
        "keep every receipt for the accountant",
        "the refund arrived after the audit",
        "deductible expenses include the home office",
    ],
    "Car repair": [
        "the garage replaced the brake pads",
        "an oil change and new tyres for the van",
        "the engine warning light came on again",
        "the mechanic found a leaking radiator hose",
        "the inspection is booked for next week",
    ],
    "Garden": [
        "the tomatoes need staking before the wind",
        "we planted tulip bulbs along the fence",
        "slugs ate most of the lettuce",
        "the compost heap is finally warm",
        "prune the apple tree in late winter",
    ],
    "Football match": [
        "the striker scored in the last minute",
        "the referee showed two red cards",
        "our team climbed to third in the league",
        "the keeper saved a penalty",
        "fans sang through the whole second half",
    ],
    "Doctor visit": [
        "the blood test results came back normal",
        "the doctor prescribed antibiotics for a week",
        "my knee still hurts after the physiotherapy",
        "the vaccination appointment is on Tuesday",
        "drink more water and sleep more",
    ],
    "Moving house": [
        "the removal van arrives at eight",
        "pack the kitchen boxes first",
        "the landlord returned the deposit",
        "we painted the new bedroom blue",
        "register the new address with the bank",
    ],
    "Guitar practice": [
        "learned the barre chords for the new song",
        "the metronome helps with the strumming pattern",
        "changed the strings before the concert",
        "practised scales for half an hour",
        "the band rehearses on Thursday evenings",
    ],
    "Job interview": [
        "the recruiter asked about my last project",
        "prepare examples of leading a team",
        "the second round is with the engineering manager",
        "they offered a contract starting in March",
        "negotiate the salary before signing",
    ],
    "Birthday party": [
        "bought balloons and a chocolate cake",
        "the children played games in the garden",
        "invitations went out to twenty friends",
        "grandma brought her famous lemonade",
        "we sang and opened presents after dinner",
    ],
    "Server outage": [
        "the database ran out of disk space at night",
        "alerts fired when the latency doubled",
        "we rolled back the deploy and restarted the workers",
        "the postmortem lists three action items",
        "backups were restored without data loss",
    ],
}
QUERIES = [
    "mountain holiday",
    "making bread at home",
    "paperwork for the tax office",
    "fixing the vehicle",
    "growing vegetables",
    "soccer game result",
    "medical appointment",
    "relocating to a new flat",
    "learning an instrument",
    "applying for a new position",
    "celebration for a kid",
    "production incident",
]


def make_documents(rng: random.Random, count: int, owners: list[str]) -> list[DocumentIn]:
    titles = list(TOPICS)
    documents = []
    for n in range(count):
        title = titles[n % len(titles)]
        sentences = rng.sample(TOPICS[title], rng.randint(3, 5))
        documents.append(
            DocumentIn(
                resource=f"qbench:note:{n}",
                module="qbench",
                type="note",
                owner=owners[n % len(owners)],
                title=f"{title} {n}",
                text=". ".join(s.capitalize() for s in sentences) + ".",
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    return documents


def load(node: Node, documents: list[DocumentIn], batch: int = 500) -> None:
    service: QindexService = node.service("qindex")
    for start in range(0, len(documents), batch):
        with node.kernel.db.write() as tx:
            service.index_documents(tx, documents[start : start + batch])


def embed(node: Node) -> dict[str, Any]:
    service: QindexService = node.service("qindex")
    Embedder().embed(["warm up: load the model before the clock starts"])
    began = time.perf_counter()
    stored = 0
    while batch := service.embed_pending(limit=128):
        stored += batch
    seconds = time.perf_counter() - began
    return {
        "documents": stored,
        "seconds": round(seconds, 1),
        "per_second": round(stored / seconds),
    }


def measure(node: Node, ctx: Context, rng: random.Random, queries: int) -> dict[str, Any]:
    service: QindexService = node.service("qindex")
    plan = [rng.choice(QUERIES) for _ in range(queries)]
    for q in plan[:10]:  # warm: the vector cache, the vocabulary, the model
        for mode in MODES:
            service.search(ctx, SearchQuery(q=q, mode=mode))
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    hits: dict[str, int] = dict.fromkeys(MODES, 0)
    on_topic: dict[str, int] = dict.fromkeys(MODES, 0)
    for q in plan:
        topic = list(TOPICS)[QUERIES.index(q)]
        for mode in MODES:
            began = time.perf_counter()
            result = service.search(ctx, SearchQuery(q=q, mode=mode))
            timings[mode].append(time.perf_counter() - began)
            hits[mode] += bool(result.hits)
            on_topic[mode] += bool(result.hits) and result.hits[0].title.startswith(topic)
    embedder = Embedder()
    query_vector: list[float] = []
    for q in plan:
        began = time.perf_counter()
        embedder.embed([q])
        query_vector.append(time.perf_counter() - began)
    return {
        **{f"{mode}_ms": latency_summary(timings[mode], "ms") for mode in MODES},
        "query_embedding_ms": latency_summary(query_vector, "ms"),
        "queries_with_hits": hits,
        # The best hit is a note of the query's topic (QUERIES[i] is about TOPICS[i]).
        "top_hit_on_topic": on_topic,
    }


def run(documents: int, queries: int, cluster: bool, seed: int = 11) -> dict[str, Any]:
    results: dict[str, Any] = {"benchmark": "qindex_semantic", "documents": documents}
    for backend in ("embedded", "cluster") if cluster else ("embedded",):
        rng = random.Random(seed)
        owners = [f"did:key:zBenchOwner{n:02d}" for n in range(OWNERS)]
        with open_node(backend, semantic_search=True) as node:
            load(node, make_documents(rng, documents, owners))
            embedding = embed(node)
            owner = Context(actor=Actor(id=owners[0], kind="identity"))
            operator = Context(actor=Actor(id="operator:bench", kind="operator"))
            results[backend] = {
                "embedding": embedding,
                "owner_of_a_tenth": measure(node, owner, rng, queries),
                "operator_reads_all": measure(node, operator, rng, queries),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--cluster", action="store_true", help="Also run on PostgreSQL + NATS.")
    args = parser.parse_args()
    print(json.dumps(run(args.documents, args.queries, args.cluster, args.seed), indent=2))


if __name__ == "__main__":
    main()
