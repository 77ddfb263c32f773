"""Coaching across calls (issue 16, docs/coaching.md): the queries, once for both databases.

When a call's row first says it is over (``sql.ENDED``), the store derives the call's behaviour metrics from its
stored events, in the same transaction (``CoachingStore._calls_ended``): a row of ``call_metrics`` that search,
the scorecards and the review queue read with indexed queries and ``GROUP BY``, never scanning events. The same
row holds the call's review state. Teams (``agent_teams``), coaching notes at a moment, incident records and the
erasure of a call are here too. What differs by database is in the subclasses: the full-text match (FTS5 rows on
SQLite, a ``tsvector`` column on PostgreSQL) and how its rows are made and removed.

Blocking, like the rest of the store: the service calls it from worker threads.
"""

from __future__ import annotations

import datetime
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.analysis.alert_rules import EMPATHY_CATEGORIES, EMPATHY_WINDOW_S, FAST_WPM
from service.analysis.monitor import ESCALATING_PHRASES
from service.storage.sql import CALL_COLUMNS, Cursor, Row, SqlStore

REVIEW_STATES = ("new", "reviewed", "coached")
SEVERITIES = ("low", "medium", "high", "critical")
PERIODS = {"day": 1, "week": 7}
SORTS = {"newest": "m.started DESC, m.call_id DESC", "oldest": "m.started ASC, m.call_id ASC",
         "score": "m.escalation_score DESC, m.started DESC, m.call_id DESC",
         "duration": "m.duration DESC, m.started DESC, m.call_id DESC"}
EMPATHY_EARLY_S = 2.0
"""An acknowledgement that began this shortly before the escalation still answers it (as the alert engine rules)."""

COUNTS = ("agent_talk_s", "customer_talk_s", "interruptions", "dead_air", "dead_air_s", "monologues", "fast_speech",
          "voice_rising", "escalations", "answered", "raised_after", "alerts")
"""A call's derived numbers, which scorecards add up."""
METRIC_COLUMNS = ("call_id", "agent_id", "language", "lang", "started", "ended", "day", "duration", "status",
                  "escalation_score", "flagged", *COUNTS)
_METRIC_UPSERT = (f"INSERT INTO call_metrics ({', '.join(METRIC_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(METRIC_COLUMNS))}) ON CONFLICT (call_id) DO UPDATE SET "
                  + ", ".join(f"{c} = excluded.{c}" for c in METRIC_COLUMNS if c != "call_id"))
_DERIVED_FROM = ("speech_end", "interruption", "backchannel", "dead_air", "monologue", "speaking_rate",
                 "raised_voice", "phrase", "alert", "alert_retracted")
SUMMARY = ("id", "agent_id", "language", "started", "ended", "duration", "status", "escalation_score", "flagged",
           "review", "alerts")
_SUMMARY_SELECT = ("m.call_id, m.agent_id, m.language, m.started, m.ended, m.duration, m.status, "
                   "m.escalation_score, m.flagged, m.review, m.alerts")
NOTE_COLUMNS = ("id", "call_id", "agent_id", "t", "author", "text", "created", "acknowledged_at")
INCIDENT_COLUMNS = ("id", "call_id", "agent_id", "t", "category", "severity", "what_happened", "outcome",
                    "follow_up", "author", "created")
ERASED_TABLES = ("events", "alerts", "transcripts", "notes", "call_metrics")
"""Tables whose rows of an erased call go (``calls`` too; ``incidents`` are kept, unlinked, unless asked)."""


class NotFound(LookupError):
    """No such call, note or incident (or none the caller may see)."""


class Conflict(RuntimeError):
    """The call cannot be changed so now (it is live)."""


# -- the metrics of one call, from its events -----------------------------------------------------------------


def derive(events: Iterable[Row]) -> dict[str, float]:
    """One call's behaviour numbers (``COUNTS``) from its events' wire forms. Behaviour only: never a guess at
    the agent's emotions. An escalation is the customer's raised voice or an escalating phrase (frustration, a
    manager request, a churn threat); it was answered when an agent's empathy, apology or acknowledgement began
    from ``EMPATHY_EARLY_S`` before it to ``EMPATHY_WINDOW_S`` after it; ``raised_after``: the agent's own voice
    rose within that window after it."""
    out = dict.fromkeys(COUNTS, 0.0)
    escalations: list[float] = []
    answers: list[float] = []
    raised: list[float] = []
    for e in events:
        kind = e.get("type")
        if kind == "speech_end":
            key = "agent_talk_s" if e.get("leg") == "agent" else "customer_talk_s"
            out[key] += max(0.0, float(e["end"]) - float(e["start"]))
        elif kind == "interruption" and e.get("by") == "agent":
            out["interruptions"] += 1
        elif kind == "backchannel" and isinstance(e.get("retracts"), dict) and e["retracts"].get("by") == "agent":
            out["interruptions"] -= 1  # its words showed the "interruption" was "mm-hm"
        elif kind == "dead_air":
            out["dead_air"] += 1
            out["dead_air_s"] += float(e["duration"])
        elif kind == "monologue" and e.get("leg") == "agent":
            out["monologues"] += 1
        elif kind == "speaking_rate" and e.get("leg") == "agent" and float(e["wpm"]) > FAST_WPM:
            out["fast_speech"] += 1
        elif kind == "raised_voice":
            if e.get("leg") == "agent":
                out["voice_rising"] += 1
                raised.append(float(e["start"]))
            else:
                escalations.append(float(e["start"]))
        elif kind == "phrase":
            if e.get("leg") == "customer" and e.get("category") in ESCALATING_PHRASES:
                escalations.append(float(e["start"]))
            elif e.get("leg") == "agent" and e.get("category") in EMPATHY_CATEGORIES:
                answers.append(float(e["start"]))
        elif kind == "alert":
            out["alerts"] += 1
        elif kind == "alert_retracted":
            out["alerts"] -= 1
    out["interruptions"] = max(0.0, out["interruptions"])
    out["alerts"] = max(0.0, out["alerts"])
    out["escalations"] = len(escalations)
    out["answered"] = sum(any(s - EMPATHY_EARLY_S <= a <= s + EMPATHY_WINDOW_S for a in answers) for s in escalations)
    out["raised_after"] = sum(any(s <= r <= s + EMPATHY_WINDOW_S for r in raised) for s in escalations)
    out["agent_talk_s"] = round(out["agent_talk_s"], 3)
    out["customer_talk_s"] = round(out["customer_talk_s"], 3)
    out["dead_air_s"] = round(out["dead_air_s"], 3)
    return out


def primary(language: str) -> str:
    """A language tag's primary subtag, lower case: ``en-US`` -> ``en``."""
    return language.split("-")[0].split("_")[0].lower()


def metrics_row(call: Row, counts: dict[str, float]) -> tuple[Any, ...]:
    """The ``call_metrics`` row of ``call`` (a ``calls`` row as a dict) with its derived counts."""
    started = float(call["started"])
    return (call["id"], call["agent_id"], call["language"], primary(call["language"]), started, call["ended"],
            int(started // 86400), float(call["duration"] or 0.0), call["status"], int(call["escalation_score"]),
            bool(call["flagged"]), *(counts[c] if c.endswith("_s") else int(counts[c]) for c in COUNTS))


# -- scorecards ------------------------------------------------------------------------------------------------


def rates(calls: int, sums: dict[str, float]) -> dict[str, float | int | None]:
    """A period's METRICS (docs/coaching.md) from its calls' summed counts; a rate over nothing is None."""

    def per(n: float, d: float, scale: float = 1.0) -> float | None:
        return round(n / d * scale, 4) if d else None

    return {"calls": calls, "agent_talk_s": round(sums["agent_talk_s"], 1),
            "customer_talk_s": round(sums["customer_talk_s"], 1),
            "interruptions_per_10min": per(sums["interruptions"], sums["agent_talk_s"], 600.0),
            "talk_listen_ratio": per(sums["agent_talk_s"], sums["customer_talk_s"]),
            "dead_air_per_call": per(sums["dead_air"], calls), "dead_air_s_per_call": per(sums["dead_air_s"], calls),
            "monologues_per_call": per(sums["monologues"], calls),
            "fast_speech_per_call": per(sums["fast_speech"], calls),
            "voice_rising_per_call": per(sums["voice_rising"], calls), "escalations": int(sums["escalations"]),
            "answered_share": per(sums["answered"], sums["escalations"]),
            "raised_after_share": per(sums["raised_after"], sums["escalations"]),
            "alerts_per_call": per(sums["alerts"], calls), "flagged_share": per(sums["flagged"], calls)}


def medians(points: Sequence[dict[str, float | int | None]]) -> dict[str, float | int | None]:
    """Each metric's median over ``points`` (agents), leaving out those where it is None."""
    out: dict[str, float | int | None] = {}
    for key in points[0] if points else ():
        values = [float(v) for p in points if (v := p[key]) is not None]
        out[key] = round(statistics.median(values), 4) if values else None
    return out


def bucket_start(bucket: int, period: str) -> float:
    """The Unix time a day or week bucket starts (weeks start on Monday; day 0, 1970-01-01, was a Thursday)."""
    day = bucket if period == "day" else bucket * 7 - 3
    return float(day * 86400)


def bucket_label(bucket: int, period: str) -> str:
    return datetime.datetime.fromtimestamp(bucket_start(bucket, period), datetime.UTC).date().isoformat()


_SUMS = ", ".join(f"SUM({c})" for c in COUNTS) + ", SUM(CASE WHEN flagged THEN 1 ELSE 0 END)"


@dataclass
class Scope:
    """Whom a caller may see: ``agent_id`` (an agent: their calls only) or ``teams`` (a supervisor scoped to
    teams); neither: everyone."""

    agent_id: str | None = None
    teams: tuple[str, ...] | None = None



@dataclass
class Filters:
    """Call search's filters (docs/coaching.md); None: not filtered on."""

    q: str | None = None
    agent_id: str | None = None
    team: str | None = None
    start_from: float | None = None
    start_to: float | None = None
    rule: str | None = None
    flagged: bool | None = None
    min_score: int | None = None
    language: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    has_notes: bool | None = None
    review: str | None = None
    sort: str = "newest"
    scope: Scope = field(default_factory=Scope)


class CoachingStore(SqlStore):
    """``SqlStore`` with coaching across calls; ``sqlite.Store`` and ``postgres.PgStore`` derive from it."""

    # -- what a subclass provides -------------------------------------------------------------------------

    def _line_match(self, q: str) -> tuple[str, list[Any]] | None:
        """A condition on a transcript line ``t`` that holds when the line has every word of ``q``; None when
        ``q`` has no word to look for (nothing matches)."""
        raise NotImplementedError

    def _call_match(self, cur: Cursor, q: str) -> tuple[str, list[Any]] | None:
        """A condition on a ``call_metrics`` row ``m`` that holds when one of its call's lines matches ``q``
        (the plan is the database's to choose, where it can)."""
        line = self._line_match(q)
        if line is None:
            return None
        return f"EXISTS (SELECT 1 FROM transcripts t WHERE t.call_id = m.call_id AND {line[0]})", line[1]

    def _index_lines(self, cur: Cursor, call_id: str) -> None:
        """(Re)make the full-text rows of ``call_id``'s transcript lines, where the database needs that done."""

    def _unindex_lines(self, cur: Cursor, call_id: str) -> None:
        """Remove the full-text rows of ``call_id``'s lines (before the lines themselves go)."""

    def _purge_index(self, cur: Cursor) -> None:
        """After an erasure: make sure no part of the full-text index still holds the erased words."""

    # -- derived rows, made as calls end --------------------------------------------------------------------

    def _calls_ended(self, cur: Cursor, calls: dict[str, str | None]) -> None:
        for call_id, team in calls.items():
            cur.execute(self.q(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE id = ?"), (call_id,))
            row = cur.fetchone()
            if row is None:
                continue
            call = dict(zip(CALL_COLUMNS, row, strict=True))
            marks = ", ".join("?" * len(_DERIVED_FROM))
            cur.execute(self.q(f"SELECT body FROM events WHERE call_id = ? AND type IN ({marks})"),
                        (call_id, *_DERIVED_FROM))
            counts = derive(json.loads(r[0]) for r in cur.fetchall())
            cur.execute(self.q(_METRIC_UPSERT), metrics_row(call, counts))
            if team is not None:
                self._set_team(cur, call["agent_id"], team, "ingest")
            self._index_lines(cur, call_id)

    def _line_redacted(self, cur: Cursor, call_id: str) -> None:
        cur.execute(self.q("SELECT 1 FROM call_metrics WHERE call_id = ?"), (call_id,))
        if cur.fetchone() is not None:  # indexed already: a late redaction must reach the index too
            self._index_lines(cur, call_id)

    def derive_missing(self, batch: int = 500) -> int:
        """Derive the rows of ended calls that have none (calls stored before the coaching schema); returns how
        many. Run by ``migrate``."""
        done = 0
        marks = ", ".join("?" * 3)
        while True:
            with self._reading() as cur:
                cur.execute(self.q(f"SELECT id FROM calls WHERE status IN ({marks}) AND id NOT IN "
                                   "(SELECT call_id FROM call_metrics) LIMIT ?"), ("ended", "interrupted", "failed",
                                                                                   batch))
                ids = [r[0] for r in cur.fetchall()]
            if not ids:
                return done
            with self._transaction() as cur:
                self._calls_ended(cur, dict.fromkeys(ids))
            done += len(ids)

    # -- teams ------------------------------------------------------------------------------------------------

    def _set_team(self, cur: Cursor, agent_id: str, team: str, source: str) -> None:
        """From ingest metadata a team never replaces one a supervisor set."""
        keep = " WHERE agent_teams.source <> 'supervisor'" if source != "supervisor" else ""
        cur.execute(self.q("INSERT INTO agent_teams (agent_id, team, source, updated) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (agent_id) DO UPDATE SET team = excluded.team, source = excluded.source, "
                           "updated = excluded.updated" + keep), (agent_id, team, source, self._now()))

    def set_team(self, agent_id: str, team: str | None) -> Row:
        with self._transaction() as cur:
            if team is None:
                cur.execute(self.q("DELETE FROM agent_teams WHERE agent_id = ?"), (agent_id,))
                return {"agent_id": agent_id, "team": None, "source": "supervisor", "updated": self._now()}
            self._set_team(cur, agent_id, team, "supervisor")
        return self.team_of(agent_id) or {"agent_id": agent_id, "team": team}

    def team_of(self, agent_id: str) -> Row | None:
        with self._reading() as cur:
            cur.execute(self.q("SELECT agent_id, team, source, updated FROM agent_teams WHERE agent_id = ?"),
                        (agent_id,))
            row = cur.fetchone()
        return None if row is None else dict(zip(("agent_id", "team", "source", "updated"), row, strict=True))

    def teams(self, only: Sequence[str] | None = None) -> list[Row]:
        with self._reading() as cur:
            cur.execute("SELECT team, agent_id FROM agent_teams ORDER BY team, agent_id")
            rows = cur.fetchall()
        out: dict[str, list[str]] = defaultdict(list)
        for team, agent in rows:
            if only is None or team in only:
                out[team].append(agent)
        return [{"team": t, "agents": a} for t, a in out.items()]

    def _teams_of(self, cur: Cursor, agents: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(agents))
        if not wanted:
            return {}
        cur.execute(self.q(f"SELECT agent_id, team FROM agent_teams WHERE agent_id IN "
                           f"({', '.join('?' * len(wanted))})"), wanted)
        return dict(cur.fetchall())

    def _members(self, cur: Cursor, teams: Sequence[str]) -> list[str]:
        """The agents in ``teams`` now. Queries take them as a list: ``agent_id IN (...)`` is one index range per
        agent on both databases, where a subquery left SQLite scanning by time."""
        if not teams:
            return []
        cur.execute(self.q(f"SELECT agent_id FROM agent_teams WHERE team IN ({', '.join('?' * len(teams))}) "
                           "ORDER BY agent_id"), list(teams))
        return [r[0] for r in cur.fetchall()]

    @staticmethod
    def _in(column: str, agents: Sequence[str]) -> tuple[str, list[Any]]:
        return (f"{column} IN ({', '.join('?' * len(agents))})", list(agents)) if agents else ("1 = 0", [])

    def _team_sql(self, cur: Cursor, team: str, column: str = "m.agent_id") -> tuple[str, list[Any]]:
        return self._in(column, self._members(cur, [team]))

    def _scope_sql(self, cur: Cursor, scope: Scope | None, column: str = "m.agent_id") -> tuple[str, list[Any]]:
        if scope is None:
            return "", []
        if scope.agent_id is not None:
            return f"{column} = ?", [scope.agent_id]
        if scope.teams is not None:
            return self._in(column, self._members(cur, scope.teams))
        return "", []

    # -- search ----------------------------------------------------------------------------------------------

    def search(self, f: Filters, *, limit: int = 50, offset: int = 0) -> tuple[list[Row], int | None]:
        """Ended calls that pass ``f``, a page of them, and the offset of the next page (None: the last)."""
        with self._reading() as cur:
            return self._search(cur, f, limit, offset)

    def _search(self, cur: Cursor, f: Filters, limit: int, offset: int) -> tuple[list[Row], int | None]:
        where: list[str] = []
        args: list[Any] = []

        def add(clause: str, *values: Any) -> None:
            where.append(clause)
            args.extend(values)

        scope, scope_args = self._scope_sql(cur, f.scope)
        if scope:
            add(scope, *scope_args)
        if f.agent_id is not None:
            add("m.agent_id = ?", f.agent_id)
        if f.team is not None:
            team, team_args = self._team_sql(cur, f.team)
            add(team, *team_args)
        if f.start_from is not None:
            add("m.started >= ?", f.start_from)
        if f.start_to is not None:
            add("m.started < ?", f.start_to)
        if f.rule is not None:
            add("m.call_id IN (SELECT call_id FROM alerts WHERE rule = ?)", f.rule)
        if f.flagged is not None:
            add("m.flagged = ?", f.flagged)
        if f.min_score is not None:
            add("m.escalation_score >= ?", f.min_score)
        if f.language is not None:
            add("m.lang = ?", primary(f.language))
        if f.min_duration is not None:
            add("m.duration >= ?", f.min_duration)
        if f.max_duration is not None:
            add("m.duration <= ?", f.max_duration)
        if f.has_notes is not None:
            add(("" if f.has_notes else "NOT ") + "EXISTS (SELECT 1 FROM notes n WHERE n.call_id = m.call_id)")
        if f.review is not None:
            add("m.review = ?", f.review)
        if f.q is not None:
            text = self._call_match(cur, f.q)
            if text is None:
                return [], None
            add(text[0], *text[1])
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        cur.execute(self.q(f"SELECT {_SUMMARY_SELECT} FROM call_metrics m{clause} "
                           f"ORDER BY {SORTS[f.sort]} LIMIT ? OFFSET ?"), [*args, limit + 1, offset])
        rows = cur.fetchall()
        more = len(rows) > limit
        calls = [self._summary(r) for r in rows[:limit]]
        self._annotate(cur, calls)
        lines = self._first_lines(cur, f.q, [c["id"] for c in calls]) if f.q is not None else {}
        return [{"call": c, "match": lines.get(c["id"])} for c in calls], offset + limit if more else None

    def _first_lines(self, cur: Cursor, q: str, ids: list[str]) -> dict[str, Row]:
        """Each of ``ids``' earliest line that matches ``q``, for the page to open the call at that moment."""
        line = self._line_match(q)
        if line is None or not ids:
            return {}
        cur.execute(self.q(f'SELECT t.call_id, t.start, t.leg, t."end", t.text FROM transcripts t WHERE t.call_id '
                           f"IN ({', '.join('?' * len(ids))}) AND {line[0]} ORDER BY t.call_id, t.start"),
                    [*ids, *line[1]])
        out: dict[str, Row] = {}
        for call_id, start, leg, end, text in cur.fetchall():
            out.setdefault(call_id, {"t": start, "leg": leg, "start": start, "end": end, "text": text})
        return out

    @staticmethod
    def _summary(row: Sequence[Any]) -> Row:
        s = dict(zip(SUMMARY, row, strict=True))
        s["flagged"] = bool(s["flagged"])
        return s

    def _annotate(self, cur: Cursor, calls: list[Row]) -> None:
        """The page's calls get their agent's team and their notes count (two indexed reads for the page)."""
        if not calls:
            return
        teams = self._teams_of(cur, (c["agent_id"] for c in calls))
        ids = [c["id"] for c in calls]
        cur.execute(self.q(f"SELECT call_id, COUNT(*) FROM notes WHERE call_id IN ({', '.join('?' * len(ids))}) "
                           "GROUP BY call_id"), ids)
        notes = {a: int(n) for a, n in cur.fetchall()}
        for c in calls:
            c["team"] = teams.get(c["agent_id"])
            c["notes"] = notes.get(c["id"], 0)

    # -- scorecards -------------------------------------------------------------------------------------------

    @staticmethod
    def _bucket(period: str) -> str:
        return "day" if period == "day" else "(day + 3) / 7"

    def _sums(self, cur: Cursor, who: str, args: Sequence[Any], period: str, start: float, end: float,
              by_agent: bool) -> list[tuple[Any, ...]]:
        group = f"agent_id, {self._bucket(period)}" if by_agent else self._bucket(period)
        cur.execute(self.q(f"SELECT {group}, COUNT(*), {_SUMS} FROM call_metrics WHERE {who} "
                           f"AND started >= ? AND started < ? GROUP BY {group}"), [*args, start, end])
        return list(cur.fetchall())

    @staticmethod
    def _split(row: Sequence[Any]) -> tuple[int, dict[str, float]]:
        calls = int(row[0])
        sums = {c: float(v or 0) for c, v in zip((*COUNTS, "flagged"), row[1:], strict=True)}
        return calls, sums

    def scorecard(self, agent_id: str, period: str, start: float, end: float) -> Row:
        """One agent's METRICS per day or week, the team's median beside each point, the calls behind each."""
        bucket = self._bucket(period)
        with self._reading() as cur:
            team = self._teams_of(cur, [agent_id]).get(agent_id)
            own = self._sums(cur, "agent_id = ?", [agent_id], period, start, end, by_agent=False)
            cur.execute(self.q(f"SELECT {bucket}, call_id FROM call_metrics WHERE agent_id = ? AND started >= ? "
                               "AND started < ? ORDER BY started, call_id"), (agent_id, start, end))
            ids: dict[int, list[str]] = defaultdict(list)
            for b, call_id in cur.fetchall():
                ids[int(b)].append(call_id)
            team_rows = [] if team is None else self._sums(
                cur, *self._team_sql(cur, team, "agent_id"), period, start, end, by_agent=True)
        per_bucket: dict[int, list[dict[str, float | int | None]]] = defaultdict(list)
        for r in team_rows:
            per_bucket[int(r[1])].append(rates(*self._split(r[2:])))
        points = []
        total_calls, total = 0, dict.fromkeys((*COUNTS, "flagged"), 0.0)
        for r in sorted(own, key=lambda r: int(r[0])):
            b = int(r[0])
            calls, sums = self._split(r[1:])
            total_calls += calls
            for k, v in sums.items():
                total[k] += v
            points.append({"start": bucket_start(b, period), "label": bucket_label(b, period), "calls": calls,
                           "call_ids": ids.get(b, []), "metrics": rates(calls, sums),
                           "team_median": medians(per_bucket[b]) if team is not None else None})
        return {"agent_id": agent_id, "team": team, "period": period, "from": start, "to": end,
                "empathy_window_s": EMPATHY_WINDOW_S, "points": points,
                "total": {"calls": total_calls, "metrics": rates(total_calls, total)}}

    def team_scorecard(self, team: str, period: str, start: float, end: float) -> Row:
        """Each agent of ``team``'s METRICS per day or week, and their median per period."""
        bucket = self._bucket(period)
        with self._reading() as cur:
            members, member_ids = self._team_sql(cur, team, "agent_id")
            rows = self._sums(cur, members, member_ids, period, start, end, by_agent=True)
            cur.execute(self.q(f"SELECT agent_id, {bucket}, call_id FROM call_metrics WHERE {members} "
                               "AND started >= ? AND started < ? ORDER BY started, call_id"), (*member_ids, start, end))
            ids: dict[tuple[str, int], list[str]] = defaultdict(list)
            for agent, b, call_id in cur.fetchall():
                ids[agent, int(b)].append(call_id)
        agents: dict[str, list[Row]] = defaultdict(list)
        per_bucket: dict[int, list[dict[str, float | int | None]]] = defaultdict(list)
        for r in sorted(rows, key=lambda r: (r[0], int(r[1]))):
            agent, b = r[0], int(r[1])
            calls, sums = self._split(r[2:])
            m = rates(calls, sums)
            per_bucket[b].append(m)
            agents[agent].append({"start": bucket_start(b, period), "label": bucket_label(b, period),
                                  "calls": calls, "call_ids": ids.get((agent, b), []), "metrics": m})
        median = [{"start": bucket_start(b, period), "label": bucket_label(b, period), "agents": len(ms),
                   "metrics": medians(ms)} for b, ms in sorted(per_bucket.items())]
        return {"team": team, "period": period, "from": start, "to": end, "empathy_window_s": EMPATHY_WINDOW_S,
                "agents": [{"agent_id": a, "points": p} for a, p in sorted(agents.items())], "median": median}

    # -- the review queue -----------------------------------------------------------------------------------

    def queue(self, *, review: str | None = "new", agent_id: str | None = None, team: str | None = None,
              start_from: float | None = None, start_to: float | None = None, scope: Scope | None = None,
              limit: int = 50, offset: int = 0) -> Row:
        """Flagged ended calls in ``review`` state (None: all), newest first, with the counts of every state."""
        where = ["m.flagged = ?"]
        args: list[Any] = [True]
        with self._reading() as cur:
            for sql, values in (self._scope_sql(cur, scope), ("", []) if team is None else self._team_sql(cur, team)):
                if sql:
                    where.append(sql)
                    args += values
            if agent_id is not None:
                where.append("m.agent_id = ?")
                args.append(agent_id)
            if start_from is not None:
                where.append("m.started >= ?")
                args.append(start_from)
            if start_to is not None:
                where.append("m.started < ?")
                args.append(start_to)
            clause = " AND ".join(where)
            counts = dict.fromkeys(REVIEW_STATES, 0)
            for state in REVIEW_STATES:  # each an index range count, not one scan of every flagged call
                cur.execute(self.q(f"SELECT COUNT(*) FROM call_metrics m WHERE {clause} AND m.review = ?"),
                            [*args, state])
                counts[state] = int(cur.fetchone()[0])
            state_sql, state_args = ("", []) if review is None else (" AND m.review = ?", [review])
            cur.execute(self.q(f"SELECT {_SUMMARY_SELECT} FROM call_metrics m WHERE {clause}{state_sql} "
                               "ORDER BY m.started DESC, m.call_id DESC LIMIT ? OFFSET ?"),
                        [*args, *state_args, limit + 1, offset])
            rows = cur.fetchall()
            calls = [self._summary(r) for r in rows[:limit]]
            self._annotate(cur, calls)
        return {"calls": calls, "counts": counts, "next_offset": offset + limit if len(rows) > limit else None}

    def set_review(self, call_id: str, state: str, by: str | None = None) -> Row:
        if state not in REVIEW_STATES:
            raise ValueError(f"state must be one of {', '.join(REVIEW_STATES)}")
        now = self._now()
        with self._single() as cur:
            cur.execute(self.q("UPDATE call_metrics SET review = ?, review_updated = ?, reviewed_by = ? "
                               "WHERE call_id = ?"), (state, now, by, call_id))
            if cur.rowcount == 0:
                raise Conflict(f"call {call_id} has not ended (or does not exist)")
        return {"call_id": call_id, "review": state, "review_updated": now, "reviewed_by": by}

    def call_agent(self, call_id: str) -> tuple[str, str] | None:
        """The call's agent and status, or None."""
        with self._reading() as cur:
            cur.execute(self.q("SELECT agent_id, status FROM calls WHERE id = ?"), (call_id,))
            row = cur.fetchone()
        return None if row is None else (row[0], row[1])

    def metrics(self, call_id: str) -> Row | None:
        cols = (*METRIC_COLUMNS, "review", "review_updated", "reviewed_by")
        with self._reading() as cur:
            cur.execute(self.q(f"SELECT {', '.join(cols)} FROM call_metrics WHERE call_id = ?"), (call_id,))
            row = cur.fetchone()
        if row is None:
            return None
        out = dict(zip(cols, row, strict=True))
        out["flagged"] = bool(out["flagged"])
        return out

    # -- coaching notes ---------------------------------------------------------------------------------------

    def add_coaching_note(self, call_id: str, t: float | None, author: str, text: str) -> Row:
        created = self._now()
        with self._single() as cur:
            cur.execute(self.q("INSERT INTO notes (call_id, t, author, text, created) VALUES (?, ?, ?, ?, ?)"
                               + self._returning_id), (call_id, t, author, text, created))
            note_id = self._inserted_id(cur)
        note = self.note(note_id)
        assert note is not None
        return note

    _NOTE_SELECT = ("SELECT n.id, n.call_id, c.agent_id, n.t, n.author, n.text, n.created, n.acknowledged_at "
                    "FROM notes n JOIN calls c ON c.id = n.call_id")

    def note(self, note_id: int) -> Row | None:
        with self._reading() as cur:
            cur.execute(self.q(self._NOTE_SELECT + " WHERE n.id = ?"), (note_id,))
            row = cur.fetchone()
        return None if row is None else dict(zip(NOTE_COLUMNS, row, strict=True))

    def list_notes(self, *, agent_id: str | None = None, call_id: str | None = None,
                   acknowledged: bool | None = None, scope: Scope | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[Row], int | None]:
        where: list[str] = []
        args: list[Any] = []
        with self._reading() as cur:
            scope_sql, scope_args = self._scope_sql(cur, scope, "c.agent_id")
            if scope_sql:
                where.append(scope_sql)
                args += scope_args
            if agent_id is not None:
                where.append("c.agent_id = ?")
                args.append(agent_id)
            if call_id is not None:
                where.append("n.call_id = ?")
                args.append(call_id)
            if acknowledged is not None:
                where.append("n.acknowledged_at IS " + ("NOT NULL" if acknowledged else "NULL"))
            clause = f" WHERE {' AND '.join(where)}" if where else ""
            cur.execute(self.q(f"{self._NOTE_SELECT}{clause} ORDER BY n.created DESC, n.id DESC LIMIT ? OFFSET ?"),
                        [*args, limit + 1, offset])
            rows = cur.fetchall()
        notes = [dict(zip(NOTE_COLUMNS, r, strict=True)) for r in rows[:limit]]
        return notes, offset + limit if len(rows) > limit else None

    def acknowledge(self, note_id: int) -> Row:
        """The note, acknowledged now (or when it first was)."""
        with self._single() as cur:
            cur.execute(self.q("UPDATE notes SET acknowledged_at = ? WHERE id = ? AND acknowledged_at IS NULL"),
                        (self._now(), note_id))
        note = self.note(note_id)
        if note is None:
            raise NotFound(f"no note {note_id}")
        return note

    # -- incidents -----------------------------------------------------------------------------------------------

    def add_incident(self, call_id: str, fields: Row) -> Row:
        """``fields``: category, severity, what_happened, outcome, follow_up, author, t (checked by the caller)."""
        with self._single() as cur:
            cur.execute(self.q("SELECT agent_id FROM calls WHERE id = ?"), (call_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"no call {call_id}")
            values = (call_id, row[0], fields.get("t"), fields["category"], fields["severity"],
                      fields["what_happened"], fields["outcome"], fields["follow_up"], fields["author"], self._now())
            cur.execute(self.q(f"INSERT INTO incidents ({', '.join(INCIDENT_COLUMNS[1:])}) "
                               f"VALUES ({', '.join('?' * len(values))})" + self._returning_id), values)
            incident_id = self._inserted_id(cur)
        return dict(zip(INCIDENT_COLUMNS, (incident_id, *values), strict=True))

    def incidents(self, *, call_id: str | None = None, agent_id: str | None = None, team: str | None = None,
                  category: str | None = None, severity: str | None = None, created_from: float | None = None,
                  created_to: float | None = None, scope: Scope | None = None, limit: int | None = 50,
                  offset: int = 0) -> tuple[list[Row], int | None]:
        """Incidents, newest first (``limit`` None: every one)."""
        where: list[str] = []
        args: list[Any] = []
        page = "" if limit is None else " LIMIT ? OFFSET ?"
        with self._reading() as cur:
            for sql, values in (self._scope_sql(cur, scope, "i.agent_id"),
                                ("", []) if team is None else self._team_sql(cur, team, "i.agent_id")):
                if sql:
                    where.append(sql)
                    args += values
            for sql, value in (("i.call_id = ?", call_id), ("i.agent_id = ?", agent_id), ("i.category = ?", category),
                               ("i.severity = ?", severity), ("i.created >= ?", created_from),
                               ("i.created < ?", created_to)):
                if value is not None:
                    where.append(sql)
                    args.append(value)
            clause = f" WHERE {' AND '.join(where)}" if where else ""
            cur.execute(self.q(f"SELECT {', '.join('i.' + c for c in INCIDENT_COLUMNS)} FROM incidents i{clause} "
                               f"ORDER BY i.created DESC, i.id DESC{page}"),
                        args if limit is None else [*args, limit + 1, offset])
            rows = cur.fetchall()
        if limit is None:
            return [dict(zip(INCIDENT_COLUMNS, r, strict=True)) for r in rows], None
        out = [dict(zip(INCIDENT_COLUMNS, r, strict=True)) for r in rows[:limit]]
        return out, offset + limit if len(rows) > limit else None

    # -- one call's export and erasure -----------------------------------------------------------------------

    def export(self, call_id: str) -> Row | None:
        call = self.get_call(call_id)
        if call is None:
            return None
        metrics = self.metrics(call_id)
        return {"call": call, "metrics": metrics, "review": None if metrics is None else metrics["review"],
                "transcript": self.transcript(call_id), "events": self.events(call_id, limit=10**7),
                "notes": self.list_notes(call_id=call_id, limit=10**6)[0],
                "incidents": self.incidents(call_id=call_id, limit=None)[0]}

    def erase(self, call_id: str, *, keep_incidents: bool = True) -> Row:
        """Remove everything kept about ``call_id`` but its incidents (kept, cut loose from the call, unless
        ``keep_incidents`` is False), in one transaction. Returns what went, and the recording's path for the
        caller to delete once this has committed. ``NotFound``; ``Conflict`` while the call is live."""
        with self._transaction() as cur:
            cur.execute(self.q("SELECT status, recording FROM calls WHERE id = ?"), (call_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"no call {call_id}")
            if row[0] in ("live", "closing"):
                raise Conflict(f"call {call_id} is live: erase it once it has ended")
            self._unindex_lines(cur, call_id)
            counts: dict[str, int] = {}
            for table in ERASED_TABLES:
                cur.execute(self.q(f"DELETE FROM {table} WHERE call_id = ?"), (call_id,))
                counts[table] = cur.rowcount
            cur.execute(self.q("DELETE FROM calls WHERE id = ?"), (call_id,))
            self._purge_index(cur)
            if keep_incidents:
                cur.execute(self.q("UPDATE incidents SET call_id = NULL, t = NULL WHERE call_id = ?"), (call_id,))
                kept, deleted = cur.rowcount, 0
            else:
                cur.execute(self.q("DELETE FROM incidents WHERE call_id = ?"), (call_id,))
                kept, deleted = 0, cur.rowcount
        return {"call_id": call_id, "recording": row[1], "rows": counts, "incidents_kept": kept,
                "incidents_deleted": deleted}
