"""Coaching analytics at scale (issue 16): fill each backend with generated calls, then time call search, the
scorecards and the review queue through the store's real queries, beside a naive plan that answers the same from the
raw tables (transcripts scanned with LIKE, metrics re-derived from each call's events, the queue filtered from
``calls``) in the same run. Prints a table of p50/p95 milliseconds.

    nice .venv/bin/python -m benchmarks.analytics --calls 100000 \
        --pg postgresql://postgres@127.0.0.1:5432/postgres

The PostgreSQL URL names a server where the benchmark may create (and afterwards drop) its own database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from service.storage.backends import open_store
from service.storage.coaching import COUNTS, CoachingStore, Filters, derive, metrics_row, rates
from service.storage.fulltext import indexed
from service.storage.sql import CALL_COLUMNS

DAY = 86400.0
START = 1_759_104_000.0  # Monday 2025-09-29, UTC: a quarter of calls from here
SPAN_DAYS = 91
TEAMS = 8
AGENTS = 96

EN_CUSTOMER = ["I want a refund for this month", "why was my card charged twice", "I would like to cancel my "
               "subscription", "this is ridiculous, I have been waiting for an hour", "can I speak to your manager",
               "my internet keeps dropping every evening", "I am thinking of switching to another provider",
               "the invoice shows a late fee I never agreed to", "the router lights are blinking orange",
               "I moved house and need to transfer the contract", "nobody called me back yesterday",
               "my password reset email never arrives", "the technician did not show up", "thanks, that helps"]
EN_AGENT = ["I understand how frustrating that is", "I am sorry for the trouble", "let me check your account",
            "I can see the payment here", "could you confirm your date of birth", "I have issued a credit",
            "I will escalate this to the billing team", "is there anything else I can help with",
            "let me transfer you to my supervisor", "the refund will arrive in five working days"]
RU_CUSTOMER = ["я хочу вернуть деньги за подписку", "почему с карты списали два раза",
               "это безобразие, я жду уже час", "позовите вашего руководителя", "я уйду к другому оператору",
               "интернет постоянно пропадает вечером", "хочу отменить подписку", "спасибо, это помогло"]
RU_AGENT = ["понимаю ваше раздражение", "приношу извинения за неудобства", "сейчас проверю ваш счёт",
            "я оформил возврат средств", "уточните, пожалуйста, дату рождения", "передам вопрос руководителю"]
RULES = ["interruption", "dead_air", "monologue", "fast_speech", "customer_raised_voice", "frustration",
         "no_empathy", "manager_request", "churn_threat", "agent_voice_rising", "customer_upset"]


def generate(n: int, seed: int = 7) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``n`` ended calls with a realistic mix of events: turns of speech, utterances (redacted text), some
    interruptions, dead air, monologues, speaking-rate readings, raised voices, cue phrases and alerts."""
    rnd = random.Random(seed)
    for i in range(n):
        agent = f"agent-{rnd.randrange(AGENTS):03d}"
        ru = rnd.random() < 0.15
        duration = round(rnd.lognormvariate(5.4, 0.6), 1)  # about 4 minutes, a long tail
        started = START + rnd.random() * SPAN_DAYS * DAY
        call_id = f"CA{i:08d}"
        events: list[dict[str, Any]] = []
        t = 0.0
        leg = "customer"
        cust, agt = (RU_CUSTOMER, RU_AGENT) if ru else (EN_CUSTOMER, EN_AGENT)
        while t < duration - 4:
            turn = rnd.uniform(2.0, 12.0)
            events.append({"type": "speech_end", "leg": leg, "start": round(t, 3), "end": round(t + turn, 3),
                           "t": round(t + turn + 0.3, 3)})
            if rnd.random() < 0.5:
                text = rnd.choice(cust if leg == "customer" else agt)
                events.append({"type": "utterance", "leg": leg, "start": round(t, 3), "end": round(t + turn, 3),
                               "text": text, "language": "ru" if ru else "en", "t": round(t + turn + 1.5, 3)})
            t += turn + rnd.uniform(0.2, 2.0)
            leg = "agent" if leg == "customer" else "customer"
        score = 0
        for _ in range(rnd.choice((0, 0, 1, 1, 2, 4))):
            s = round(rnd.uniform(0, duration), 3)
            events.append({"type": "interruption", "by": "agent", "of": "customer", "start": s, "overlap": 0.6,
                           "kind": "competitive", "confidence": 0.95, "t": s + 0.8})
        for _ in range(rnd.choice((0, 0, 0, 1, 2))):
            s = round(rnd.uniform(0, duration), 3)
            events.append({"type": "dead_air", "start": s, "duration": round(rnd.uniform(5, 15), 3), "t": s + 5})
        if rnd.random() < 0.2:
            events.append({"type": "monologue", "leg": "agent", "start": 10.0, "duration": 45.0, "t": 55.0})
        for k in range(rnd.randint(1, 4)):
            events.append({"type": "speaking_rate", "leg": "agent", "wpm": rnd.randint(120, 215), "seconds": 20.0,
                           "t": 30.0 * (k + 1)})
        escalated = rnd.random() < 0.25
        if escalated:
            s = round(rnd.uniform(0, duration), 3)
            events.append({"type": "phrase", "leg": "customer", "category": rnd.choice(
                ("frustration", "manager_request", "churn_threat")), "text": "...", "start": s, "t": s + 2})
            if rnd.random() < 0.4:
                events.append({"type": "raised_voice", "leg": "customer", "start": s + 1, "loudness_db": 8.0,
                               "pitch_st": 3.0, "t": s + 2})
            if rnd.random() < 0.6:
                a = s + rnd.uniform(1, 30)
                events.append({"type": "phrase", "leg": "agent", "category": "empathy", "text": "...", "start": a,
                               "t": a + 2})
            if rnd.random() < 0.1:
                events.append({"type": "raised_voice", "leg": "agent", "start": s + 5, "loudness_db": 7.0,
                               "pitch_st": 2.0, "t": s + 6})
        for k in range(rnd.choice((0, 0, 1, 1, 2, 3, 5)) + (2 if escalated else 0)):
            rule = rnd.choice(RULES)
            score += 12
            events.append({"type": "alert", "id": f"{call_id}-{k + 1}", "rule": rule, "severity": "warning",
                           "message": rule, "tip": "", "cause": {}, "t": round(rnd.uniform(0, duration), 3)})
        events.sort(key=lambda e: e["t"])
        score = min(100, score)
        call: dict[str, Any] = {"id": call_id, "agent_id": agent, "source": "twilio", "language": "ru" if ru else "en",
                "started": started, "ended": started + duration, "status": "ended", "duration": duration,
                "escalation_score": score, "flagged": score >= 50, "flags": [], "counts": {}, "recording": None,
                "worker": None}
        yield call, [{**e, "call_id": call_id} for e in events]


def rows(call: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    c = dict(call)
    c["flags"], c["counts"] = json.dumps(c["flags"]), json.dumps(c["counts"])
    out["calls"].append(tuple(c[k] for k in (*CALL_COLUMNS, "worker")))
    for seq, e in enumerate(events):
        body = json.dumps(e, separators=(",", ":"))
        out["events"].append((call["id"], seq, e["type"], e["t"], body))
        if e["type"] == "alert":
            out["alerts"].append((e["id"], call["id"], e["rule"], e["severity"], e["t"], body))
        elif e["type"] == "utterance":
            out["transcripts"].append((call["id"], e["leg"], e["start"], e["end"], e["text"], e["language"]))
    out["call_metrics"].append(metrics_row(call, derive(events)))
    return out


COLUMNS = {"calls": (*CALL_COLUMNS, "worker"), "events": ("call_id", "seq", "type", "t", "body"),
           "alerts": ("id", "call_id", "rule", "severity", "t", "body"),
           "transcripts": ("call_id", "leg", "start", '"end"', "text", "language"),
           "call_metrics": ("call_id", "agent_id", "language", "lang", "started", "ended", "day", "duration", "status",
                            "escalation_score", "flagged", *COUNTS)}


def teams_rows() -> list[tuple[str, str]]:
    return [(f"agent-{a:03d}", f"team-{a % TEAMS}") for a in range(AGENTS)]


def fill_sqlite(path: Path, n: int) -> None:
    open_store(f"sqlite:///{path}").close()  # the schema
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    db.executemany("INSERT INTO agent_teams VALUES (?, ?, 'supervisor', 0)", teams_rows())
    batch: dict[str, list[tuple[Any, ...]]] = defaultdict(list)

    def flush() -> None:
        for table, values in batch.items():
            cols = COLUMNS[table]
            db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values)
        batch.clear()

    for call, events in generate(n):
        for k, v in rows(call, events).items():
            batch[k] += v
        if len(batch["calls"]) >= 5000:
            flush()
    flush()
    lines = db.execute("SELECT rowid, text FROM transcripts").fetchall()
    db.executemany("INSERT INTO transcript_fts (rowid, terms) VALUES (?, ?)", [(r, indexed(t)) for r, t in lines])
    db.execute("COMMIT")
    db.execute("INSERT INTO transcript_fts (transcript_fts) VALUES ('optimize')")
    db.execute("ANALYZE")
    db.close()


def fill_postgres(url: str, n: int) -> None:
    import psycopg

    open_store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cur, cur.copy("COPY agent_teams (agent_id, team, source, updated) FROM STDIN") as cp:
            for agent, team in teams_rows():
                cp.write_row((agent, team, "supervisor", 0.0))
        batch: dict[str, list[tuple[Any, ...]]] = defaultdict(list)

        def flush() -> None:
            for table, values in batch.items():
                with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as cp:
                    for v in values:
                        cp.write_row(v)
            batch.clear()

        for call, events in generate(n):
            for k, v in rows(call, events).items():
                batch[k] += v
            if len(batch["calls"]) >= 5000:
                flush()
        flush()
        conn.execute("VACUUM ANALYZE")


# -- the naive plans: the same answers from the raw tables -------------------------------------------------------


def naive_search(store: CoachingStore, like: str, agent: str | None = None) -> int:
    """Lines scanned with LIKE, joined to calls, newest first."""
    extra, args = ("AND c.agent_id = ? ", [agent]) if agent else ("", [])
    with store._reading() as cur:
        cur.execute(store.q("SELECT c.id, MIN(t.start) FROM transcripts t JOIN calls c ON c.id = t.call_id "
                            f"WHERE lower(t.text) LIKE ? {extra}GROUP BY c.id, c.started ORDER BY c.started DESC "
                            "LIMIT 50"), [f"%{like}%", *args])
        return len(cur.fetchall())


def naive_scorecard(store: CoachingStore, who: str, args: list[Any], start: float, end: float) -> int:
    """Every call's metrics re-derived from its events, added up per agent and week."""
    with store._reading() as cur:
        cur.execute(store.q(f"SELECT id, agent_id, started, flagged FROM calls WHERE {who} AND started >= ? "
                            "AND started < ?"), [*args, start, end])
        calls = {r[0]: r for r in cur.fetchall()}
        ids = list(calls)
        sums: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: dict.fromkeys((*COUNTS, "flagged"), 0.0))
        counts: dict[tuple[str, int], int] = defaultdict(int)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            cur.execute(store.q(f"SELECT call_id, body FROM events WHERE call_id IN ({', '.join('?' * len(chunk))})"),
                        chunk)
            per: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for call_id, body in cur.fetchall():
                per[call_id].append(json.loads(body))
            for call_id in chunk:
                _, agent, started, flagged = calls[call_id]
                key = (agent, int((started // DAY + 3) // 7))
                counts[key] += 1
                for k, v in derive(per[call_id]).items():
                    sums[key][k] += v
                sums[key]["flagged"] += bool(flagged)
    return len([rates(counts[k], s) for k, s in sums.items()])


def naive_queue(store: CoachingStore) -> int:
    with store._reading() as cur:
        cur.execute(store.q("SELECT id FROM calls WHERE flagged = ? AND status = 'ended' ORDER BY started DESC "
                            "LIMIT 50"), [True])
        return len(cur.fetchall())


# -- timing -------------------------------------------------------------------------------------------------------


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


def measure(store: CoachingStore, runs: int, naive_runs: int) -> list[tuple[str, float, float, float | None,
                                                                            float | None]]:
    week_end = START + 12 * 7 * DAY
    week = (week_end - 7 * DAY, week_end)
    quarter = (START, START + SPAN_DAYS * DAY)
    agent, team = "agent-007", "team-7"
    cases: list[tuple[str, Callable[[], object], Callable[[], object] | None]] = [
        ("search 'refund' (common word)", lambda: store.search(Filters(q="refund")), lambda: naive_search(store,
                                                                                                           "refund")),
        ("search 'manager' + agent", lambda: store.search(Filters(q="manager", agent_id=agent)),
         lambda: naive_search(store, "manager", agent)),
        ("search 'cancel subscription' flagged, score>=60",
         lambda: store.search(Filters(q="cancel subscription", flagged=True, min_score=60)), None),
        ("search 'подписку' (ru)", lambda: store.search(Filters(q="подписку")),
         lambda: naive_search(store, "подписк")),
        ("search 'zanzibar' (no line has it)", lambda: store.search(Filters(q="zanzibar")),
         lambda: naive_search(store, "zanzibar")),
        ("search no text: team, rule, 1 week", lambda: store.search(Filters(team=team, rule="no_empathy",
                                                                           start_from=week[0], start_to=week[1])),
         None),
        ("search no text, sort by score", lambda: store.search(Filters(sort="score")), None),
        ("scorecard agent, week (by day)", lambda: store.scorecard(agent, "day", *week),
         lambda: naive_scorecard(store, "agent_id = ?", [agent], *week)),
        ("scorecard agent, quarter (by week)", lambda: store.scorecard(agent, "week", *quarter),
         lambda: naive_scorecard(store, "agent_id = ?", [agent], *quarter)),
        ("scorecard team, week", lambda: store.team_scorecard(team, "day", *week),
         lambda: naive_scorecard(store, "agent_id IN (SELECT agent_id FROM agent_teams WHERE team = ?)", [team],
                                 *week)),
        ("scorecard team, quarter", lambda: store.team_scorecard(team, "week", *quarter),
         lambda: naive_scorecard(store, "agent_id IN (SELECT agent_id FROM agent_teams WHERE team = ?)", [team],
                                 *quarter)),
        ("queue: new flagged calls", lambda: store.queue(), lambda: naive_queue(store)),
        ("queue: team, reviewed", lambda: store.queue(review="reviewed", team=team), None),
    ]
    out = []
    for name, fast, naive in cases:
        p50, p95 = timed(fast, runs)
        n50, n95 = timed(naive, naive_runs) if naive is not None else (None, None)
        out.append((name, p50, p95, n50, n95))
        print(f"  {name}: p95 {p95:.1f} ms" + (f" (naive {n95:.0f} ms)" if n95 is not None else ""), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--naive-runs", type=int, default=5)
    ap.add_argument("--pg", default="", help="postgresql://... of a server to create a scratch database on")
    ap.add_argument("--sqlite-only", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the filled databases, and reuse them when they exist "
                                                         "(SQLite in /tmp, PostgreSQL's scratch database)")
    args = ap.parse_args()
    results: dict[str, list[tuple[str, float, float, float | None, float | None]]] = {}
    with contextlib.ExitStack() as stack:
        tmp = Path("/tmp") if args.keep else Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="callwatch-analytics-")))
        path = tmp / f"callwatch-analytics-{args.calls}.db"
        t0 = time.perf_counter()
        if not path.exists():
            fill_sqlite(path, args.calls)
        print(f"sqlite: {args.calls} calls filled in {time.perf_counter() - t0:.0f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)", flush=True)
        store = open_store(f"sqlite:///{path}")
        assert isinstance(store, CoachingStore)
        results["sqlite"] = measure(store, args.runs, args.naive_runs)
        store.close()
    if args.pg and not args.sqlite_only:
        with scratch_database(args.pg, args.keep) as (url, filled):
            t0 = time.perf_counter()
            if not filled:
                fill_postgres(url, args.calls)
            print(f"postgresql: {args.calls} calls filled in {time.perf_counter() - t0:.0f} s", flush=True)
            pg = open_store(url)
            assert isinstance(pg, CoachingStore)
            results["postgresql"] = measure(pg, args.runs, args.naive_runs)
            pg.close()
    print(f"\n{args.calls} calls; milliseconds, p50 / p95 ({args.runs} runs; naive {args.naive_runs})\n")
    print(f"| query | {' | '.join(f'{b} p50 | {b} p95 | {b} naive p95' for b in results)} |")
    print(f"|---|{'---|---|---|' * len(results)}")
    names = [r[0] for r in next(iter(results.values()))]
    for i, name in enumerate(names):
        cells = []
        for b in results:
            _, p50, p95, _, n95 = results[b][i]
            cells += [f"{p50:.1f}", f"{p95:.1f}", "-" if n95 is None else f"{n95:.0f}"]
        print(f"| {name} | {' | '.join(cells)} |")


@contextlib.contextmanager
def scratch_database(server_url: str, keep: bool) -> Iterator[tuple[str, bool]]:
    """A database of the benchmark's own on ``server_url``'s server, and whether it is filled already (kept)."""
    import psycopg

    name = "callwatch_analytics_bench"
    base = server_url.rsplit("/", 1)[0]
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if exists and not keep:
            conn.execute(f"DROP DATABASE {name}")
        if not (exists and keep):
            conn.execute(f"CREATE DATABASE {name}")
    filled = exists and keep
    if filled:
        with psycopg.connect(f"{base}/{name}") as conn:
            filled = conn.execute("SELECT to_regclass('call_metrics') IS NOT NULL").fetchone() == (True,)
            filled = filled and conn.execute("SELECT COUNT(*) > 0 FROM call_metrics").fetchone() == (True,)
    try:
        yield f"{base}/{name}", filled
    finally:
        if not keep:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name}")


if __name__ == "__main__":
    main()
