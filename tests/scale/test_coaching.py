"""Coaching across calls (issue 16, docs/coaching.md) on both backends: search with English and Russian stemming,
filters, scorecard numbers from hand-made calls, the review queue, notes and their acknowledgement, incidents and
their CSV, erasure that leaves no row and no file, and who may read what (REST)."""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from service.core import auth
from service.core.settings import Settings
from service.storage import postgres as postgres_store
from service.storage import sqlite as sqlite_store
from service.storage.backends import open_store
from service.storage.coaching import CoachingStore, Filters, Scope, derive
from service.storage.fulltext import stem_ru
from service.web.app import create_app

DAY = 86400.0
MONDAY = 1_767_571_200.0  # 2026-01-05 00:00 UTC, a Monday
SECRET = "test-secret"


@pytest.fixture
def store(store_url: str) -> Iterator[CoachingStore]:
    s = open_store(store_url)
    assert isinstance(s, CoachingStore)
    try:
        yield s
    finally:
        s.close()


def ev(kind: str, t: float, /, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields, "t": t}


def line(leg: str, start: float, text: str, language: str = "en") -> dict[str, Any]:
    return ev("utterance", start + 1.0, leg=leg, start=start, end=start + 2.0, text=text, language=language)


def add_call(store: CoachingStore, call_id: str, *, agent: str = "a1", started: float = MONDAY + 3600,
             events: list[dict[str, Any]] | None = None, language: str = "en", duration: float = 300.0,
             score: int = 0, flagged: bool = False, team: str | None = None, status: str = "ended") -> None:
    row: dict[str, Any] = {"id": call_id, "agent_id": agent, "source": "native", "language": language,
                           "started": started, "ended": None, "status": "live", "duration": 0.0,
                           "escalation_score": 0, "flagged": False, "flags": [], "counts": {}, "recording": None}
    store.write([("call", row)])
    own = [{**e, "call_id": call_id, **({"id": f"{call_id}/{e['id']}"} if "id" in e else {})} for e in events or []]
    store.write([("events", (call_id, 0, own))])
    end = {**row, "status": status, "ended": started + duration, "duration": duration, "escalation_score": score,
           "flagged": flagged}
    if team is not None:
        end["team"] = team
    store.write([("call", end)])


# -- search -------------------------------------------------------------------------------------------------------


def ids(store: CoachingStore, **f: Any) -> list[str]:
    hits, _ = store.search(Filters(**f), limit=100)
    return [h["call"]["id"] for h in hits]


def test_search_stems_english_and_russian_lines_and_points_at_the_moment(store: CoachingStore) -> None:
    add_call(store, "en1", events=[line("agent", 5.0, "Hello, how can I help?"),
                                   line("customer", 40.0, "I want to cancel my subscriptions and get refunds"),
                                   line("customer", 90.0, "Cancel it now")])
    add_call(store, "ru1", language="ru", events=[
        line("customer", 12.0, "Я хочу отменить подписку и вернуть деньги", "ru"),
        line("agent", 20.0, "Понимаю ваше раздражение, сейчас проверю", "ru")])
    add_call(store, "en2", started=MONDAY + 7200, events=[line("customer", 3.0, "My card was charged twice")])

    hits, nxt = store.search(Filters(q="cancelled subscription"))
    assert nxt is None and [h["call"]["id"] for h in hits] == ["en1"]
    assert hits[0]["match"] == {"t": 40.0, "leg": "customer", "start": 40.0, "end": 42.0,
                                "text": "I want to cancel my subscriptions and get refunds"}
    assert ids(store, q="CANCELLING") == ["en1"]  # the earliest matching line is the one shown
    assert store.search(Filters(q="cancel"))[0][0]["match"]["t"] == 40.0
    assert ids(store, q="подписки") == ["ru1"]
    assert ids(store, q="деньгами") == ["ru1"]
    assert ids(store, q="раздражения проверить") == ["ru1"]
    assert ids(store, q="charges") == ["en2"]
    assert ids(store, q="refund twice") == []  # every word in one line
    assert ids(store, q="the and") == []  # stop words only: nothing to look for
    assert ids(store, q="zebra") == []
    assert ids(store) == ["en2", "ru1", "en1"] or ids(store) == ["en2", "en1", "ru1"]
    assert all(h["match"] is None for h in store.search(Filters())[0])


def test_search_gives_the_same_answers_by_either_plan(store: CoachingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both stores find the calls of few matching lines first, and walk the calls when many lines match."""
    for i in range(6):
        add_call(store, f"p{i}", agent=f"a{i % 2}", started=MONDAY + i * 60, score=10 * i,
                 events=[line("customer", 3.0 + i, "refund" if i % 3 else "no match here")])
    expected = ids(store, q="refunds", agent_id="a1"), ids(store, q="refund", sort="score")
    monkeypatch.setattr(sqlite_store, "FEW_LINES", 0)
    monkeypatch.setattr(postgres_store, "FEW_LINES", 0)
    assert (ids(store, q="refunds", agent_id="a1"), ids(store, q="refund", sort="score")) == expected
    assert expected == (["p5", "p1"], ["p5", "p4", "p2", "p1"])


def test_the_snowball_russian_stemmer_agrees_with_postgresql(postgres: Any) -> None:
    words = ("подписку подписки подписками отменить отменяю отменили деньги деньгами раздражение раздражённый "
             "менеджером руководителя поговорить верните извините пожалуйста понимаю сожалею ответственность "
             "красивейший длинный организованность сдавайтесь бегущий прочитавши").split()
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        for w in words:
            row = conn.execute("SELECT ts_lexize('russian_stem', %s)", (w,)).fetchone()
            assert row is not None and row[0] == [stem_ru(w)], w


def test_search_filters_sorting_and_paging(store: CoachingStore) -> None:
    store.set_team("a2", "north")
    add_call(store, "c1", agent="a1", started=MONDAY, duration=60, score=10,
             events=[ev("alert", 5.0, id="c1-1", rule="dead_air", severity="info")])
    add_call(store, "c2", agent="a2", started=MONDAY + DAY, duration=600, score=80, flagged=True,
             events=[ev("alert", 5.0, id="c2-1", rule="customer_upset", severity="critical")])
    add_call(store, "c3", agent="a2", started=MONDAY + 2 * DAY, duration=200, score=40, language="ru-RU")
    store.add_note("c3", "sup", "listen at 1:20")
    store.set_review("c2", "reviewed")

    assert ids(store) == ["c3", "c2", "c1"]
    assert ids(store, sort="oldest") == ["c1", "c2", "c3"]
    assert ids(store, sort="score") == ["c2", "c3", "c1"]
    assert ids(store, sort="duration") == ["c2", "c3", "c1"]
    assert ids(store, agent_id="a2") == ["c3", "c2"]
    assert ids(store, team="north") == ["c3", "c2"]
    assert ids(store, team="south") == []
    assert ids(store, start_from=MONDAY + DAY, start_to=MONDAY + 2 * DAY) == ["c2"]
    assert ids(store, rule="customer_upset") == ["c2"]
    assert ids(store, flagged=True) == ["c2"] and ids(store, flagged=False) == ["c3", "c1"]
    assert ids(store, min_score=40) == ["c3", "c2"]
    assert ids(store, language="ru") == ["c3"] and ids(store, language="en") == ["c2", "c1"]
    assert ids(store, min_duration=100, max_duration=300) == ["c3"]
    assert ids(store, has_notes=True) == ["c3"] and ids(store, has_notes=False) == ["c2", "c1"]
    assert ids(store, review="reviewed") == ["c2"] and ids(store, review="new") == ["c3", "c1"]
    assert ids(store, scope=Scope(agent_id="a1")) == ["c1"]
    assert ids(store, scope=Scope(teams=("north",))) == ["c3", "c2"]
    page1, nxt = store.search(Filters(), limit=2)
    page2, last = store.search(Filters(), limit=2, offset=nxt or 0)
    assert [h["call"]["id"] for h in page1 + page2] == ["c3", "c2", "c1"] and nxt == 2 and last is None
    summary = page1[0]["call"]
    assert summary == {"id": "c3", "agent_id": "a2", "language": "ru-RU", "started": MONDAY + 2 * DAY,
                       "ended": MONDAY + 2 * DAY + 200, "duration": 200.0, "status": "ended", "escalation_score": 40,
                       "flagged": False, "review": "new", "alerts": 0, "team": "north", "notes": 1}


def test_a_live_call_is_not_searched_until_it_ends(store: CoachingStore) -> None:
    add_call(store, "live1", status="live", events=[line("customer", 1.0, "refund please")])
    assert ids(store, q="refund") == [] and store.metrics("live1") is None


# -- scorecards --------------------------------------------------------------------------------------------------


def behaviour(interruptions: int = 2, agent_talk: float = 300.0) -> list[dict[str, Any]]:
    """A hand-made call: 300 s of agent talk, 200 of the customer's; two interruptions by the agent (one of them
    shown a backchannel by its words); two dead airs (4 + 6 s); a monologue; one fast and one normal rate; the
    agent's voice rising at 50 s; escalations at 40 (raised voice), 100 (frustration) and 200 (manager request);
    empathy at 110; three alerts, one retracted."""
    intr = {"type": "interruption", "by": "agent", "of": "customer", "start": 30.0, "overlap": 0.5,
            "kind": "competitive", "confidence": 1.0, "t": 31.0}
    return [
        ev("speech_end", 10.0, leg="agent", start=0.0, end=agent_talk),
        ev("speech_end", 12.0, leg="customer", start=0.0, end=200.0),
        *[ev("interruption", 31.0 + i, by="agent", of="customer", start=30.0 + i, overlap=0.5, kind="cutoff",
             confidence=1.0) for i in range(interruptions)],
        ev("interruption", 35.0, by="customer", of="agent", start=34.0, overlap=0.5, kind="cutoff", confidence=1.0),
        ev("backchannel", 33.0, by="agent", start=30.0, text="mm-hm", confirmed_by="words", retracts=intr),
        ev("dead_air", 64.0, start=60.0, duration=4.0), ev("dead_air", 126.0, start=120.0, duration=6.0),
        ev("monologue", 150.0, leg="agent", start=120.0, duration=30.0),
        ev("monologue", 160.0, leg="customer", start=130.0, duration=30.0),
        ev("speaking_rate", 70.0, leg="agent", wpm=200, seconds=20.0),
        ev("speaking_rate", 90.0, leg="agent", wpm=150, seconds=20.0),
        ev("raised_voice", 41.0, leg="customer", start=40.0, loudness_db=8.0, pitch_st=3.0),
        ev("raised_voice", 51.0, leg="agent", start=50.0, loudness_db=7.0, pitch_st=2.0),
        ev("phrase", 101.0, leg="customer", category="frustration", text="ridiculous", start=100.0),
        ev("phrase", 111.0, leg="agent", category="empathy", text="i understand", start=110.0),
        ev("phrase", 201.0, leg="customer", category="manager_request", text="your manager", start=200.0),
        ev("alert", 31.0, id="x-1", rule="interruption", severity="warning"),
        ev("alert", 41.0, id="x-2", rule="customer_raised_voice", severity="warning"),
        ev("alert", 101.0, id="x-3", rule="frustration", severity="warning"),
        ev("alert_retracted", 33.0, id="x-1", rule="interruption", reason="backchannel"),
    ]


def test_a_calls_metrics_are_derived_from_its_events() -> None:
    assert derive(behaviour()) == {
        "agent_talk_s": 300.0, "customer_talk_s": 200.0, "interruptions": 1, "dead_air": 2, "dead_air_s": 10.0,
        "monologues": 1, "fast_speech": 1, "voice_rising": 1, "escalations": 3, "answered": 1, "raised_after": 1,
        "alerts": 2}


def test_scorecard_numbers_with_the_team_median_and_the_calls_behind_each_point(store: CoachingStore) -> None:
    for agent in ("a1", "a2", "a3"):
        store.set_team(agent, "north")
    add_call(store, "a1-mon", agent="a1", started=MONDAY + 3600, events=behaviour(), flagged=True)
    add_call(store, "a1-tue", agent="a1", started=MONDAY + DAY + 3600, events=behaviour(interruptions=3))
    add_call(store, "a1-next", agent="a1", started=MONDAY + 7 * DAY + 60, events=behaviour(interruptions=1))
    add_call(store, "a2-mon", agent="a2", started=MONDAY + 7200, events=behaviour(interruptions=5))
    add_call(store, "a3-mon", agent="a3", started=MONDAY + 9000, events=behaviour(interruptions=7))
    add_call(store, "other", agent="a9", started=MONDAY + 9000, events=behaviour(interruptions=99))

    week = store.scorecard("a1", "week", MONDAY, MONDAY + 14 * DAY)
    assert week["team"] == "north" and [p["label"] for p in week["points"]] == ["2026-01-05", "2026-01-12"]
    first = week["points"][0]
    assert first["start"] == MONDAY and first["calls"] == 2 and first["call_ids"] == ["a1-mon", "a1-tue"]
    m = first["metrics"]
    # interruptions: (2 - 1) + (3 - 1) = 3 over 600 s of agent talk: 3 per 10 minutes
    assert m["interruptions_per_10min"] == 3.0 and m["talk_listen_ratio"] == 1.5
    assert m["dead_air_per_call"] == 2.0 and m["dead_air_s_per_call"] == 10.0
    assert m["monologues_per_call"] == 1.0 and m["fast_speech_per_call"] == 1.0 and m["voice_rising_per_call"] == 1.0
    assert m["escalations"] == 6 and m["answered_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["raised_after_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["alerts_per_call"] == 2.0 and m["flagged_share"] == 0.5
    # that week the team's agents interrupted 3 (a1), 4 (a2: 5 - 1 over 300 s = 8 per 10 min) and 12 per 10 min
    assert first["team_median"]["interruptions_per_10min"] == 8.0
    assert week["points"][1]["metrics"]["interruptions_per_10min"] == 0.0
    assert week["total"]["calls"] == 3

    days = store.scorecard("a1", "day", MONDAY, MONDAY + 7 * DAY)
    assert [(p["label"], p["call_ids"]) for p in days["points"]] == [("2026-01-05", ["a1-mon"]),
                                                                     ("2026-01-06", ["a1-tue"])]
    assert days["points"][0]["metrics"]["interruptions_per_10min"] == 2.0

    team = store.team_scorecard("north", "week", MONDAY, MONDAY + 7 * DAY)
    assert [a["agent_id"] for a in team["agents"]] == ["a1", "a2", "a3"]
    assert team["median"][0]["agents"] == 3 and team["median"][0]["metrics"]["interruptions_per_10min"] == 8.0
    assert store.scorecard("a9", "week", MONDAY, MONDAY + 7 * DAY)["points"][0]["team_median"] is None


def test_a_team_from_the_ingest_never_replaces_one_a_supervisor_set(store: CoachingStore) -> None:
    add_call(store, "t1", agent="a1", team="from-ingest")
    assert store.team_of("a1") == {"agent_id": "a1", "team": "from-ingest", "source": "ingest",
                                   "updated": pytest.approx(store.team_of("a1")["updated"])}  # type: ignore[index]
    store.set_team("a1", "north")
    add_call(store, "t2", agent="a1", team="from-ingest")
    assert store.teams() == [{"team": "north", "agents": ["a1"]}]


# -- the queue, notes, incidents ---------------------------------------------------------------------------------


def test_queue_lists_flagged_calls_by_review_state(store: CoachingStore) -> None:
    add_call(store, "f1", started=MONDAY, flagged=True)
    add_call(store, "f2", started=MONDAY + 60, flagged=True)
    add_call(store, "calm", started=MONDAY + 120)
    q = store.queue()
    assert [c["id"] for c in q["calls"]] == ["f2", "f1"] and q["counts"] == {"new": 2, "reviewed": 0, "coached": 0}
    store.set_review("f2", "reviewed", "maria")
    assert [c["id"] for c in store.queue()["calls"]] == ["f1"]
    assert [c["id"] for c in store.queue(review="reviewed")["calls"]] == ["f2"]
    store.set_review("f2", "coached")
    assert store.queue(review=None)["counts"] == {"new": 1, "reviewed": 0, "coached": 1}
    assert store.metrics("f2")["review"] == "coached"  # type: ignore[index]
    with pytest.raises(ValueError):
        store.set_review("f1", "closed")
    # the call ends again (a late rewrite of its row): its review state stays
    add_call(store, "f2", started=MONDAY + 60, flagged=True)
    assert store.metrics("f2")["review"] == "coached"  # type: ignore[index]


def test_notes_at_a_moment_and_their_acknowledgement(store: CoachingStore) -> None:
    add_call(store, "n1", agent="a1")
    add_call(store, "n2", agent="a2")
    note = store.add_coaching_note("n1", 41.5, "maria", "Let them finish here")
    store.add_coaching_note("n2", None, "maria", "Good recovery")
    assert note["t"] == 41.5 and note["agent_id"] == "a1" and note["acknowledged_at"] is None
    mine, _ = store.list_notes(scope=Scope(agent_id="a1"))
    assert [n["text"] for n in mine] == ["Let them finish here"]
    assert store.list_notes(acknowledged=False)[0][0]["call_id"] == "n2"
    acked = store.acknowledge(note["id"])
    assert acked["acknowledged_at"] is not None
    assert store.acknowledge(note["id"])["acknowledged_at"] == acked["acknowledged_at"]  # the first time stays
    assert [n["id"] for n in store.list_notes(acknowledged=True)[0]] == [note["id"]]


def test_incidents_are_filed_listed_and_exported(store: CoachingStore) -> None:
    add_call(store, "i1", agent="a1")
    fields = {"category": "abuse", "severity": "high", "what_happened": "Customer threatened the agent",
              "outcome": "Call ended", "follow_up": "Flag account", "author": "maria", "t": 12.0}
    inc = store.add_incident("i1", fields)
    store.add_incident("i1", {**fields, "severity": "low", "category": "complaint"})
    assert inc["agent_id"] == "a1" and inc["call_id"] == "i1" and inc["t"] == 12.0
    assert [i["category"] for i in store.incidents(severity="high")[0]] == ["abuse"]
    assert len(store.incidents(agent_id="a1", limit=None)[0]) == 2
    export = store.export("i1")
    assert export is not None and len(export["incidents"]) == 2 and export["review"] == "new"


# -- erasure --------------------------------------------------------------------------------------------------


def every_row_mentioning(url: str, *needles: str) -> list[str]:
    """Each table (FTS shadow tables included) with a row whose text holds one of ``needles``."""
    found = []
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    text = " ".join(str(v) for v in row if not isinstance(v, bytes))
                    text += " ".join(v.decode("utf-8", "replace") for v in row if isinstance(v, bytes))
                    if any(n in text for n in needles):
                        found.append(table)
                        break
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
            for table in tables:
                for n in needles:
                    row = conn.execute(f'SELECT COUNT(*) FROM "{table}" t WHERE t::text LIKE %s',
                                       (f"%{n}%",)).fetchone()
                    if row and row[0]:
                        found.append(table)
                        break
    return found


def test_erasure_leaves_no_row_anywhere(store: CoachingStore, store_url: str) -> None:
    events = [*behaviour(), line("customer", 40.0, "My name is Zanzibarova, cancel everything")]
    add_call(store, "gone-1", agent="a1", events=events, flagged=True)
    add_call(store, "kept-1", agent="a1", events=[line("customer", 4.0, "cancel please")])
    store.add_coaching_note("gone-1", 4.0, "maria", "note")
    store.add_note("gone-1", "sup", "old-style note")
    store.add_incident("gone-1", {"category": "abuse", "severity": "high", "what_happened": "shouting",
                                  "outcome": "", "follow_up": "", "author": "maria", "t": 3.0})
    assert ids(store, q="zanzibarova") == ["gone-1"]
    assert "call_metrics" in every_row_mentioning(store_url, "gone-1")

    done = store.erase("gone-1")
    assert done["incidents_kept"] == 1 and done["rows"]["events"] == len(events)
    assert every_row_mentioning(store_url, "gone-1", "Zanzibarova", "zanzibarova") == []
    assert ids(store, q="zanzibarova") == [] and ids(store, q="cancel") == ["kept-1"]
    kept = store.incidents()[0]
    assert [(i["call_id"], i["t"], i["agent_id"]) for i in kept] == [(None, None, "a1")]
    assert store.get_call("gone-1") is None and store.export("gone-1") is None

    add_call(store, "gone-2", agent="a1")
    store.add_incident("gone-2", {"category": "x", "severity": "low", "what_happened": "y", "outcome": "",
                                  "follow_up": "", "author": "m", "t": None})
    assert store.erase("gone-2", keep_incidents=False)["incidents_deleted"] == 1
    assert every_row_mentioning(store_url, "gone-2") == []


# -- REST, with access control -------------------------------------------------------------------------------------


@pytest.fixture
def api(store_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, CoachingStore]]:
    settings = Settings(data_dir=tmp_path, db_url=store_url, secret=SECRET, no_asr=True, recording="none")
    seed = open_store(store_url)
    assert isinstance(seed, CoachingStore)
    try:
        with TestClient(create_app(settings)) as client:
            yield client, seed
    finally:
        seed.close()


def bearer(role: auth.Role, agent_id: str | None = None, teams: tuple[str, ...] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue(SECRET, role, agent_id, teams=teams)}"}


SUP, A1, A2 = bearer("supervisor"), bearer("agent", "a1"), bearer("agent", "a2")


def test_rest_endpoints_and_who_may_read_what(api: tuple[TestClient, CoachingStore], tmp_path: Path) -> None:
    client, store = api
    store.set_team("a1", "north")
    store.set_team("a2", "south")
    add_call(store, "r1", agent="a1", flagged=True, events=[line("customer", 7.0, "I want a refund")])
    add_call(store, "r2", agent="a2", started=MONDAY + 7200, flagged=True,
             events=[line("customer", 9.0, "refund me now")])

    hits = client.get("/v1/search", params={"q": "refunds"}, headers=SUP).json()["hits"]
    assert [(h["call"]["id"], h["match"]["t"]) for h in hits] == [("r2", 9.0), ("r1", 7.0)]
    assert [h["call"]["id"] for h in client.get("/v1/search", headers=A1).json()["hits"]] == ["r1"]
    north = bearer("supervisor", teams=("north",))
    assert [h["call"]["id"] for h in client.get("/v1/search", headers=north).json()["hits"]] == ["r1"]

    # an agent reads nobody else's calls, scorecard or notes: 403 JSON (404 for one call)
    for path, params in (("/v1/search", {"agent_id": "a2"}), ("/v1/agents/a2/scorecard", {}),
                         ("/v1/notes", {"agent_id": "a2"}), ("/v1/queue", {}), ("/v1/incidents", {}),
                         ("/v1/incidents.csv", {}), ("/v1/teams/south/scorecard", {}),
                         ("/v1/calls/r2/export", {})):
        r = client.get(path, params=params, headers=A1)
        assert r.status_code == 403 and r.json()["status"] == 403, path
    assert client.get("/v1/calls/r2", headers=A1).status_code == 404
    assert client.get("/v1/agents/a2/scorecard", headers=north).status_code == 403
    assert client.get("/v1/agents/a1/scorecard", headers=north).status_code == 200
    assert client.get("/v1/search").status_code == 401
    assert client.delete("/v1/calls/r1", headers=A1).status_code == 403
    assert client.get("/v1/search", params={"limit": "x"}, headers=SUP).json()["status"] == 400

    card = client.get("/v1/agents/a1/scorecard", params={"from": MONDAY, "to": MONDAY + 7 * DAY},
                      headers=A1).json()
    assert card["points"][0]["call_ids"] == ["r1"] and card["team"] == "north"

    # queue and review
    assert [c["id"] for c in client.get("/v1/queue", headers=SUP).json()["calls"]] == ["r2", "r1"]
    r = client.put("/v1/calls/r1/review", json={"state": "coached"}, headers=SUP)
    assert r.status_code == 200 and r.json()["review"] == "coached"
    assert client.put("/v1/calls/r1/review", json={"state": "done"}, headers=SUP).status_code == 422
    assert client.get("/v1/queue", params={"review": "coached"}, headers=SUP).json()["counts"]["coached"] == 1

    # notes: a supervisor writes at a moment; the agent lists and acknowledges their own
    note = client.post("/v1/notes", json={"call_id": "r1", "t": 7.0, "text": "Acknowledge first"}, headers=SUP)
    assert note.status_code == 201
    other = client.post("/v1/notes", json={"call_id": "r2", "text": "ok"}, headers=SUP).json()
    assert [n["id"] for n in client.get("/v1/notes", headers=A1).json()["notes"]] == [note.json()["id"]]
    assert client.post(f"/v1/notes/{other['id']}/acknowledge", headers=A1).status_code == 404
    acked = client.post(f"/v1/notes/{note.json()['id']}/acknowledge", headers=A1).json()
    assert acked["acknowledged_at"] is not None
    assert client.post(f"/v1/notes/{note.json()['id']}/acknowledge", headers=SUP).status_code == 403

    # incidents and their CSV
    body = {"category": "abuse", "severity": "high", "what_happened": "=HYPERLINK(\"x\")", "outcome": "ended",
            "follow_up": "none", "t": 7.0}
    assert client.post("/v1/calls/r1/incidents", json=body, headers=SUP).status_code == 201
    assert client.post("/v1/calls/r1/incidents", json={**body, "severity": "meh"}, headers=SUP).status_code == 422
    rows = list(csv.DictReader(io.StringIO(client.get("/v1/incidents.csv", headers=SUP).text)))
    assert len(rows) == 1 and rows[0]["call_id"] == "r1" and rows[0]["what_happened"].startswith("'=")
    export = client.get("/v1/calls/r1/export", headers=SUP).json()
    assert len(export["incidents"]) == 1 and export["review"] == "coached" and export["transcript"]

    # teams
    assert client.put("/v1/agents/a3/team", json={"team": "north"}, headers=SUP).json()["team"] == "north"
    assert client.put("/v1/agents/a2/team", json={"team": "north"}, headers=north).status_code == 403
    assert {t["team"] for t in client.get("/v1/teams", headers=SUP).json()["teams"]} == {"north", "south"}

    # erasure: rows and the recording file
    wav = tmp_path / "r1.wav"
    wav.write_bytes(b"RIFF")
    store.write([("recording", ("r1", str(wav)))])
    r = client.delete("/v1/calls/r1", headers=SUP)
    assert r.status_code == 200 and r.json() == {"call_id": "r1", "erased": True, "recording_deleted": True,
                                                 "incidents_kept": 1, "incidents_deleted": 0}
    assert not wav.exists()
    assert client.get("/v1/calls/r1", headers=SUP).status_code == 404
    assert client.delete("/v1/calls/r1", headers=SUP).status_code == 404
    assert client.get("/v1/search", params={"q": "refund"}, headers=SUP).json()["hits"][0]["call"]["id"] == "r2"


def test_openapi_documents_every_coaching_endpoint(api: tuple[TestClient, CoachingStore]) -> None:
    client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/v1/search", "/v1/agents/{agent_id}/scorecard", "/v1/agents/{agent_id}/team", "/v1/teams",
                  "/v1/teams/{team}/scorecard", "/v1/queue", "/v1/calls/{call_id}/review", "/v1/notes",
                  "/v1/notes/{note_id}/acknowledge", "/v1/calls/{call_id}/incidents", "/v1/incidents",
                  "/v1/incidents.csv", "/v1/calls/{call_id}/export"):
        assert route in paths, route
    assert "delete" in paths["/v1/calls/{call_id}"]
