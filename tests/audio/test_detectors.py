"""One test per detector rule, on synthetic two-leg calls with known timing."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import pytest
from numpy.typing import NDArray

from audio.analyzer import CallAnalyzer
from audio.escalation import EscalationTracker, _Frame, median
from audio.events import (
    Backchannel,
    DeadAir,
    Interruption,
    Monologue,
    RaisedVoice,
    RaisedVoiceEnded,
    RaisedVoiceSustained,
)
from audio.settings import CUSTOMER_ESCALATION, AnalyzerSettings, EscalationSettings, FloorSettings, ProsodySettings
from tests.signals import leg, vowel

Pcm = NDArray[np.int16]
T = TypeVar("T")


def analyze(customer: Pcm, agent: Pcm, settings: AnalyzerSettings | None = None, chunk: int = 4000) -> list[Any]:
    a = CallAnalyzer(settings)
    out: list[Any] = []
    for i in range(0, len(customer), chunk):
        out += a.push(customer[i: i + chunk], agent[i: i + chunk])
    return out + a.finish()


def of_type(events: list[Any], cls: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, cls)]


def call(customer_parts: list[tuple[float, Pcm]], agent_parts: list[tuple[float, Pcm]],
         total: float = 12.0) -> tuple[Pcm, Pcm]:
    return leg(total, customer_parts, seed=1), leg(total, agent_parts, seed=2)


def test_agent_talking_over_a_mid_turn_customer_is_an_interruption() -> None:
    # Both keep talking: competitive overlap, decided once it has lasted ``competitive_ms`` (1.3 s).
    c, a = call([(1.0, vowel(200, -24, 4.0))], [(3.0, vowel(110, -24, 3.0))])
    ints = of_type(analyze(c, a), Interruption)
    assert len(ints) == 1
    i = ints[0]
    assert (i.by, i.of) == ("agent", "customer")
    assert abs(i.start / 8000 - 3.0) <= 0.06
    assert 1.2 <= i.overlap / 8000 <= 1.3
    assert abs(i.t / 8000 - 4.3) <= 0.1  # decided when the overlap was known, not back-dated


def test_cutting_the_customer_off_is_decided_once_they_stop() -> None:
    # The customer gives way 0.8 s into the agent's talk: a cut-off, known when the customer has been silent
    # for ``cutoff_ms``, before the competitive deadline.
    c, a = call([(1.0, vowel(200, -24, 2.8))], [(3.0, vowel(110, -24, 3.0))])
    ints = of_type(analyze(c, a), Interruption)
    assert [(i.by, i.of) for i in ints] == [("agent", "customer")]
    assert 0.7 <= ints[0].overlap / 8000 <= 0.9
    assert 3.8 + 0.4 <= ints[0].t / 8000 <= 4.3 + 0.05


def test_a_long_listener_response_over_a_customer_who_carries_on_is_not_an_interruption() -> None:
    # "Oh okay, I see" for 1.1 s: longer than a continuer, but the customer keeps the floor and the agent stops.
    c, a = call([(1.0, vowel(200, -24, 6.0))], [(3.0, vowel(110, -24, 1.1))])
    events = analyze(c, a)
    assert of_type(events, Interruption) == []
    assert [b.by for b in of_type(events, Backchannel)] == ["agent"]


def test_the_floor_holder_carrying_on_over_the_listeners_yeah_is_not_an_interruption() -> None:
    # The agent holds the floor, pauses 0.5 s; the customer says "yeah" into the pause and the agent resumes
    # over it. The agent's resumed segment begins while the customer talks, but the agent is not cutting in.
    agent = [(0.5, vowel(110, -24, 3.0)), (4.0, vowel(110, -24, 3.0, phase=1))]
    c, a = call([(3.6, vowel(200, -24, 0.8))], agent)
    assert of_type(analyze(c, a), Interruption) == []


def test_starting_as_the_other_finishes_is_a_terminal_overlap() -> None:
    # The customer's turn ends 0.4 s after the agent starts, falling in level into its last word as a turn end
    # does: a terminal overlap, not an interruption.
    turn = vowel(200, -24, 2.4).astype(np.float64)
    n = int(0.6 * 8000)
    turn[-n:] *= np.linspace(1.0, 0.1, n)
    c, a = call([(1.0, turn.astype(np.int16))], [(3.0, vowel(110, -24, 3.0))])
    assert of_type(analyze(c, a), Interruption) == []


def test_bleed_of_the_other_voice_is_not_talking() -> None:
    # On a quiet line the agent's mic picks up the customer 35 dB down. When the agent answers as the customer
    # finishes, that bleed is not the customer talking on: no interruption, with or without the gate.
    cust = vowel(200, -24, 3.0)
    bleed = (cust.astype(np.float64) * 10 ** (-35 / 20)).astype(np.int16)
    c = leg(12.0, [(1.0, cust)], seed=1)
    a = leg(12.0, [(1.0, bleed), (3.9, vowel(110, -24, 3.0))], seed=2)
    b = leg(12.0, [(1.0, bleed)], seed=3)  # and the customer's bleed from the agent leg into the customer leg
    c = np.clip(c.astype(np.int32) + (a.astype(np.int32) - b.astype(np.int32)) // 60, -32768, 32767).astype(np.int16)
    assert of_type(analyze(c, a), Interruption) == []


def _laughter(db: float, seconds: float) -> Pcm:
    """Breathy bursts at 5 Hz ("ha ha ha"): noise shaped by an on-off envelope, no clear pitch."""
    from tests.signals import noise

    x = noise(db, seconds, seed=7).astype(np.float64)
    t = np.arange(len(x)) / 8000
    return (x * (np.sin(2 * np.pi * 5 * t) > 0.2)).astype(np.int16)


def test_laughter_over_the_customer_does_not_take_the_turn() -> None:
    c, a = call([(1.0, vowel(200, -24, 5.0))], [(3.0, _laughter(-22, 2.0))])
    assert of_type(analyze(c, a), Interruption) == []
    # The same timing in speech is an interruption: it is the laughter's lack of pitch that rules it out.
    c, a = call([(1.0, vowel(200, -24, 5.0))], [(3.0, vowel(110, -24, 2.0))])
    assert len(of_type(analyze(c, a), Interruption)) == 1


def test_customer_cutting_in_on_the_agent_is_blamed_on_the_customer() -> None:
    c, a = call([(4.0, vowel(200, -24, 3.0))], [(1.0, vowel(110, -24, 4.0))])
    ints = of_type(analyze(c, a), Interruption)
    assert [(i.by, i.of) for i in ints] == [("customer", "agent")]


def test_short_listener_response_is_a_backchannel_not_an_interruption() -> None:
    c, a = call([(1.0, vowel(200, -24, 5.0))], [(3.0, vowel(110, -24, 0.5))])
    events = analyze(c, a)
    assert of_type(events, Interruption) == []
    bcs = of_type(events, Backchannel)
    assert len(bcs) == 1 and bcs[0].by == "agent"


def test_simultaneous_starts_are_not_blamed() -> None:
    c, a = call([(1.0, vowel(200, -24, 3.0))], [(1.1, vowel(110, -24, 3.0))])
    assert of_type(analyze(c, a), Interruption) == []


def test_taking_the_turn_after_the_other_finished_is_not_an_interruption() -> None:
    c, a = call([(1.0, vowel(200, -24, 2.0))], [(3.4, vowel(110, -24, 3.0))])
    assert of_type(analyze(c, a), Interruption) == []


def test_brief_overlap_at_the_end_of_a_turn_is_not_an_interruption() -> None:
    # The customer trails off 0.2 s after the agent starts: under the 500 ms overlap rule.
    c, a = call([(1.0, vowel(200, -24, 2.2))], [(3.0, vowel(110, -24, 3.0))])
    assert of_type(analyze(c, a), Interruption) == []


def test_dead_air_is_reported_once_after_four_seconds_of_joint_silence() -> None:
    c, a = call([(0.5, vowel(200, -24, 2.0))], [(9.0, vowel(110, -24, 2.0))], total=12.0)
    dead = of_type(analyze(c, a), DeadAir)
    assert len(dead) == 1
    assert abs(dead[0].start / 8000 - 2.5) <= 0.06
    assert abs(dead[0].t / 8000 - dead[0].start / 8000 - 4.0) <= 0.03


def test_normal_turn_gaps_are_not_dead_air() -> None:
    c, a = call([(0.5, vowel(200, -24, 2.0)), (5.5, vowel(200, -24, 2.0))], [(3.0, vowel(110, -24, 2.0))], total=9.0)
    assert of_type(analyze(c, a), DeadAir) == []


def test_monologue_after_the_configured_floor_time() -> None:
    settings = AnalyzerSettings(floor=FloorSettings(monologue_ms=8000))
    parts = [(0.5 + 2.2 * k, vowel(110, -24, 2.0, phase=k)) for k in range(6)]
    c, a = call([(4.0, vowel(200, -24, 0.4))], parts, total=15.0)
    mono = of_type(analyze(c, a, settings), Monologue)
    assert len(mono) == 1 and mono[0].leg == "agent"
    assert abs(mono[0].start / 8000 - 0.5) <= 0.06 and abs(mono[0].duration / 8000 - 8.0) <= 0.05


def frames_at(level: float, pitch_hz: float, start: int, n: int) -> list[_Frame]:
    st = 12 * np.log2(pitch_hz)
    return [_Frame(start + i, level, st) for i in range(n)]


def test_raised_voice_against_the_speakers_own_baseline() -> None:
    tracker = EscalationTracker("customer", CUSTOMER_ESCALATION)
    events: list[Any] = []
    i = 0
    for _ in range(50):  # 25 s of calm speech at -30 dB, 150 Hz: the baseline
        events += tracker.feed(frames_at(-30, 150, i, 25), i + 25)
        i += 25
    assert events == [] and tracker.baseline.level_db == -30
    onset = i
    for _ in range(12):  # +10 dB and +3 semitones
        events += tracker.feed(frames_at(-20, 178, i, 25), i + 25)
        i += 25
    raised = of_type(events, RaisedVoice)
    assert len(raised) == 1 and raised[0].start == onset * 160
    # Known within a second of loud speech: the window's median pitch is still partly the calm one.
    assert raised[0].loudness_db == 10 and 0.5 < raised[0].pitch_st <= 3.05
    assert (raised[0].t - raised[0].start) / 8000 <= 3.0
    for _ in range(14):  # calm again: the episode ends after 5 s of calm speech
        events += tracker.feed(frames_at(-30, 150, i, 25), i + 25)
        i += 25
    ended = of_type(events, RaisedVoiceEnded)
    assert len(ended) == 1 and ended[0].start == onset * 160
    assert tracker.baseline.level_db == -30  # frozen during the episode


def test_a_loud_voice_from_the_start_is_its_own_baseline() -> None:
    tracker = EscalationTracker("agent", CUSTOMER_ESCALATION)
    events: list[Any] = []
    for k in range(60):
        events += tracker.feed(frames_at(-12, 220, 25 * k, 25), 25 * k + 25)
    assert events == []


def test_a_single_loud_block_is_not_an_episode() -> None:
    tracker = EscalationTracker("customer", CUSTOMER_ESCALATION)
    events: list[Any] = []
    i = 0
    for _ in range(50):
        events += tracker.feed(frames_at(-30, 150, i, 25), i + 25)
        i += 25
    events += tracker.feed(frames_at(-10, 150, i, 30), i + 30)  # one loud phrase, 0.6 s
    i += 30
    for _ in range(10):
        events += tracker.feed(frames_at(-30, 150, i, 25), i + 25)
        i += 25
    assert of_type(events, RaisedVoice) == []


def _shout_after_calm(settings: EscalationSettings) -> list[Any]:
    """Calm speech, then a block whose last frames turn into a +14 dB shout, then the shout."""
    tracker = EscalationTracker("customer", settings)
    events: list[Any] = []
    i = 0
    for _ in range(50):
        events += tracker.feed(frames_at(-30, 150, i, 25), i + 25)
        i += 25
    events += tracker.feed(frames_at(-30, 150, i, 20) + frames_at(-16, 150, i + 20, 5), i + 25)
    i += 25
    for _ in range(4):
        events += tracker.feed(frames_at(-16, 150, i, 25), i + 25)
        i += 25
    return of_type(events, RaisedVoice)


def test_a_strong_rise_in_two_blocks_in_a_row_needs_no_second_decision() -> None:
    fast = _shout_after_calm(CUSTOMER_ESCALATION)
    slow = _shout_after_calm(replace(CUSTOMER_ESCALATION, strong_rise_db=0))
    assert len(fast) == 1 and len(slow) == 1
    assert fast[0].start == slow[0].start == (50 * 25 + 20) * 160
    # The first loud block hardly moves the window's loudness; the second is the first raised decision.
    assert fast[0].t == (52 * 25) * 160 and slow[0].t == fast[0].t + 25 * 160


def test_raised_voice_end_to_end_on_synthetic_speech() -> None:
    calm = [(1.0 + 3.0 * k, vowel(150, -30, 2.5, phase=k)) for k in range(9)]
    loud = [(28.0 + 3.0 * k, vowel(190, -18, 2.5, phase=k)) for k in range(4)]
    c, a = leg(42.0, calm + loud, seed=1), leg(42.0, [], seed=2)
    raised = of_type(analyze(c, a), RaisedVoice)
    assert len(raised) == 1 and raised[0].leg == "customer"
    assert 27.5 <= raised[0].start / 8000 <= 29.0 and raised[0].t / 8000 <= 32.0


def test_events_do_not_depend_on_chunk_size() -> None:
    c, a = call([(1.0, vowel(200, -24, 4.0)), (9.0, vowel(200, -24, 1.0))], [(3.0, vowel(110, -24, 3.0))])
    reference = [e.to_dict() for e in analyze(c, a, chunk=4000)]
    for chunk in (160, 333, 8000, len(c)):
        assert [e.to_dict() for e in analyze(c, a, chunk=chunk)] == reference


def test_the_vad_hears_the_same_frames_whatever_the_chunk_size() -> None:
    # Line noise rising 18 dB over the call moves each leg's noise floor, and so the gain the VAD hears a frame
    # with, frame by frame. A recording analysed in 0.5 s chunks and the same call streamed live in 20 ms or
    # 200 ms packets must feed the VAD the very same frames, or their events could differ.
    rng = np.random.default_rng(3)
    n = 12 * 8000
    noise = rng.normal(0.0, 1.0, n) * 10 ** ((-60 + 1.5 * np.arange(n) / 8000) / 20) * 32768

    def noisy(x: Pcm, noise: NDArray[np.float64]) -> Pcm:
        return np.clip(x.astype(np.float64) + noise, -32768, 32767).astype(np.int16)

    c = noisy(leg(12.0, [(1.0 + 3.0 * k, vowel(190, -40, 2.0, phase=k)) for k in range(3)], seed=1), noise)
    a = noisy(leg(12.0, [(2.5 + 3.0 * k, vowel(110, -36, 1.0, phase=k)) for k in range(3)], seed=2), noise[::-1])

    def heard(chunk: int) -> list[tuple[str, bytes]]:
        analyzer, frames = CallAnalyzer(), []
        for st in analyzer.legs.values():
            def record(frame: bytes, level: float, st: Any = st, vad: Any = st.classifier.is_speech) -> bool:
                frames.append((st.leg, frame))
                return bool(vad(frame, level))
            setattr(st.classifier, "is_speech", record)  # noqa: B010 - a method replaced on one instance
        for i in range(0, n, chunk):
            analyzer.push(c[i: i + chunk], a[i: i + chunk])
        return frames

    reference = heard(4000)
    assert len(reference) == 2 * n // 160
    for chunk in (160, 1600):
        assert heard(chunk) == reference


def test_legs_must_be_aligned() -> None:
    import pytest

    with pytest.raises(ValueError, match="aligned"):
        CallAnalyzer().push(np.zeros(160, np.int16), np.zeros(100, np.int16))


def test_soft_speech_on_a_noisy_line_is_not_dead_air() -> None:
    # The customer murmurs at 10 dB over the line noise through what would otherwise be a 6 s silence.
    c = leg(12.0, [(0.5, vowel(200, -24, 2.0)), (4.0, vowel(200, -46, 2.5))], noise_db=-56, seed=1)
    a = leg(12.0, [(9.0, vowel(110, -24, 2.0))], noise_db=-56, seed=2)
    assert of_type(analyze(c, a), DeadAir) == []


def test_agent_echo_on_the_customer_leg_is_not_the_customer_talking() -> None:
    # The customer stops; the agent answers 0.5 s later; the line leaks the agent back, 40 ms late and
    # 30 dB down, into the customer leg. Nobody interrupted anybody.
    agent_turn = vowel(120, -20, 3.0)
    c = leg(9.0, [(1.0, vowel(210, -24, 2.5))], noise_db=-56, seed=1)
    a = leg(9.0, [(4.0, agent_turn)], noise_db=-56, seed=2)
    echo = (agent_turn.astype(np.float64) * 10 ** (-30 / 20)).astype(np.int16)
    start = int(4.04 * 8000)
    c[start: start + len(echo)] = np.clip(c[start: start + len(echo)].astype(np.int32) + echo, -32768, 32767)
    events = analyze(c, a)
    assert of_type(events, Interruption) == []
    assert not any(e.type == "speech_start" and e.leg == "customer" and e.start / 8000 > 3.9 for e in events)


def leak(source: Pcm, into: Pcm, db: float, delay_s: float) -> Pcm:
    """``into`` with ``source`` added ``db`` down and ``delay_s`` late: line echo or headset crosstalk."""
    d = int(delay_s * 8000)
    out = into.astype(np.float64)
    out[d:] += source[: len(source) - d].astype(np.float64) * 10 ** (db / 20)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def test_the_customers_voice_leaking_into_the_agents_headset_is_not_the_agent_talking() -> None:
    # Crosstalk: the customer's long turns come back on the agent leg 20 dB down and 20 ms late. The agent
    # answers each turn after a gap. Nobody interrupts anybody, and the agent never speaks during a turn.
    turns = [(0.5 + 6.0 * k, vowel(200 + 10 * k, -20, 4.0, phase=k)) for k in range(4)]
    answers = [(5.0 + 6.0 * k, vowel(115, -22, 1.0, phase=k)) for k in range(4)]
    c, a = call(turns, answers, total=26.0)
    events = analyze(c, leak(c, a, -20.0, 0.02))
    assert of_type(events, Interruption) == []
    late = [e for e in events if e.type == "speech_start" and e.leg == "agent"
            and any(at + 2.0 < e.start / 8000 < at + 4.0 for at, _ in turns)]
    assert late == []  # once the leak is learnt (from the first turn on), no agent speech inside a turn


def test_crosstalk_that_comes_back_late_is_still_not_the_agent_talking() -> None:
    # A softphone's headset crosstalk reaches the recording after the client's jitter buffer, playout and
    # capture: here 200 ms late, past the window a leak is first looked for in. Its delay is found from both legs'
    # loudness contours, and from then on it is gated like a prompt leak.
    def syllables(x: Pcm) -> Pcm:
        # Speech rises and falls four times a second; a leak's level follows it at its own delay.
        t = np.arange(len(x)) / 8000
        return (x * (0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t))).astype(np.int16)

    turns = [(0.5 + 6.0 * k, syllables(vowel(200 + 10 * k, -20, 4.0, phase=k))) for k in range(6)]
    answers = [(5.0 + 6.0 * k, syllables(vowel(115, -22, 1.0, phase=k))) for k in range(6)]
    c, a = call(turns, answers, total=38.0)
    events = analyze(c, leak(c, a, -20.0, 0.2))
    assert of_type(events, Interruption) == []
    late = [e for e in events if e.type == "speech_start" and e.leg == "agent" and e.start / 8000 > 12.0
            and any(at + 1.0 < e.start / 8000 < at + 4.0 for at, _ in turns)]
    assert late == []


def test_a_leaks_delay_is_found_from_the_loudness_contours() -> None:
    from audio.echo import leak_delay

    rng = np.random.default_rng(5)
    # A talker's frame levels: syllables (bursts of 5-15 frames) and pauses, 30 s of 20 ms frames.
    source = np.full(1500, -60.0)
    i = 0
    while i < 1500:
        n = int(rng.integers(5, 16))
        source[i: i + n] = -20.0 + rng.normal(0.0, 4.0, n)
        i += n + int(rng.integers(2, 30))
    noise = rng.normal(-55.0, 1.5, 1500)
    leaked = np.maximum(np.concatenate([np.full(12, -80.0), source[:-12] - 20.0]), noise)
    assert leak_delay(source.astype(np.float32), leaked.astype(np.float32), 25) == 12
    own = np.maximum(np.roll(source, 700) - 3.0, noise)  # another talker: no lag follows the source
    assert leak_delay(source.astype(np.float32), own.astype(np.float32), 25) is None
    assert leak_delay(source[:80].astype(np.float32), leaked[:80].astype(np.float32), 25) is None  # too little


@pytest.mark.parametrize("max_delay_ms", [500, 0])
def test_the_level_log_for_leak_delays_stays_bounded(max_delay_ms: int) -> None:
    # An hour-long call must not grow the log the leak delay is judged on, nor must a service that turned the
    # delay search off (``leak_max_delay_ms`` 0).
    settings = replace(AnalyzerSettings(), vad=replace(AnalyzerSettings().vad, leak_max_delay_ms=max_delay_ms))
    analyzer = CallAnalyzer(settings)
    quiet = np.zeros(4000, dtype=np.int16)
    for _ in range(240):  # two minutes
        analyzer.push(quiet, quiet)
    span = settings.vad.leak_delay_span_ms // 20 + max_delay_ms // 20
    assert all(len(log) < 2 * max(span, 6) for log in analyzer._level_log.values())


def test_strong_line_echo_is_learnt_though_it_looks_like_speech_of_its_own() -> None:
    # Echo 14 dB down: louder than the bar a soft customer gets by default (15 dB under the agent), so it opens
    # speech segments of its own before it is learnt; it is still learnt, from every frame the agent speaks.
    turns = [(0.5 + 6.0 * k, vowel(110 + 5 * k, -20, 4.0, phase=k)) for k in range(4)]
    answers = [(5.0 + 6.0 * k, vowel(210, -24, 1.0, phase=k)) for k in range(4)]
    a, c = leg(26.0, turns, seed=2), leg(26.0, answers, seed=1)
    analyzer = CallAnalyzer()
    events: list[Any] = []
    cc = leak(a, c, -14.0, 0.04)
    for i in range(0, len(cc), 4000):
        events += analyzer.push(cc[i: i + 4000], a[i: i + 4000])
    assert analyzer.echo.systematic
    assert of_type(events, Interruption) == []
    late = [e for e in events if e.type == "speech_start" and e.leg == "customer"
            and any(at + 2.0 < e.start / 8000 < at + 4.0 for at, _ in turns)]
    assert late == []


def test_a_customer_talking_over_the_agent_at_a_steady_level_is_not_learnt_as_echo() -> None:
    # The customer talks over the agent twice, each time 16 dB under them at one steady level: in levels alone
    # that is what a line echo looks like (heard under most of the agent's loud speech, at a steady loss). But
    # it does not follow the agent's pitch: it is the customer, and both times they talked over the agent.
    agent = [(0.5, vowel(110, -20, 6.0)), (9.0, vowel(112, -20, 5.0, phase=1))]
    customer = [(2.0, vowel(210, -36, 2.5)), (10.5, vowel(215, -36, 2.0, phase=1))]
    c, a = call(customer, agent, total=16.0)
    analyzer = CallAnalyzer()
    events: list[Any] = []
    for i in range(0, len(c), 4000):
        events += analyzer.push(c[i: i + 4000], a[i: i + 4000])
    events += analyzer.finish()
    assert not analyzer.echo.systematic
    assert [(e.by, round(e.start / 8000)) for e in of_type(events, Interruption)] == [("customer", 2), ("customer", 10)]


def test_digital_silence_on_the_other_leg_is_not_a_voice() -> None:
    # A leg that goes to exact zeros between its words (silence suppression, a muted headset): YIN calls a
    # frame of zeros perfectly periodic. The customer answers 0.3 s after the agent stopped: not an interruption.
    a = np.zeros(8 * 8000, dtype=np.int16)
    a[8000: 8000 + 2 * 8000] = vowel(115, -22, 2.0)
    c = leg(8.0, [(3.3, vowel(210, -24, 3.0))], seed=1)
    assert of_type(analyze(c, a), Interruption) == []


@pytest.mark.parametrize("hz", [60.0, 150.0])
def test_a_steady_tone_on_a_leg_is_not_a_voice(hz: float) -> None:
    # Mains hum (60 Hz), or a buzz or tone in the voice range: periodic in every frame, 20 dB over a quiet
    # customer line, but no one is talking. The agent speaks after the customer's turn: not an interruption.
    t = np.arange(10 * 8000) / 8000
    hum = (300 * np.sin(2 * np.pi * hz * t)).astype(np.int32)
    c = np.clip(leg(10.0, [(0.5, vowel(210, -24, 3.0))], seed=1) + hum, -32768, 32767).astype(np.int16)
    a = leg(10.0, [(3.8, vowel(115, -22, 4.0))], seed=2)
    assert of_type(analyze(c, a), Interruption) == []


def test_leak_gate_learns_only_a_steady_weaker_copy() -> None:
    from audio.echo import LeakGate

    # Heard in most of the source's frames at one steady loss, even while "talking" (no alone frames at all).
    gate = LeakGate(27.0, 6.0, 15.0, 40.0)
    for k in range(200):
        gate.observe_source(12.0 + (k % 3), heard=k % 4 != 0)
    gate.update()
    assert gate.systematic and gate.is_echo(8.0) and not gate.is_echo(5.0)
    # Double talk: heard as often, but at every level: a person, not a leak. The default margin stays.
    talk = LeakGate(27.0, 6.0, 15.0, 40.0)
    for k in range(200):
        talk.observe_source(-10.0 + (k * 7) % 40, heard=True)
    talk.update()
    assert not talk.systematic and talk.margin_db == 27.0
    # A steady negative loss is this leg's voice carried by the source leg, not a leak into this one.
    carried = LeakGate(27.0, 6.0, 15.0, 40.0)
    for _ in range(200):
        carried.observe_source(-20.0, heard=True)
    carried.update()
    assert not carried.systematic
    # Half a second of a steady level is not yet a leak; a leak once seen and then gone (the headset moved)
    # leaves no stale margin behind.
    early = LeakGate(27.0, 6.0, 15.0, 40.0)
    for _ in range(25):
        early.observe_source(20.0, heard=True)
    early.update()
    assert not early.systematic and early.margin_db == 27.0
    for _ in range(100):
        early.observe_source(20.0, heard=True)
    early.update()
    assert early.systematic and early.margin_db == 14.0
    for _ in range(1500):
        early.observe_source(45.0, heard=False)
    early.update()
    assert not early.systematic and early.margin_db == 27.0
    # An open gate (crosstalk on the agent leg) stays open until a leak shows.
    closed = LeakGate(math.inf, 6.0, 15.0, 40.0, alone=False)
    for _ in range(200):
        closed.observe(30.0)
    closed.update()
    assert not closed.is_echo(60.0)


def test_echo_gate_learns_the_line_and_keeps_a_soft_customer() -> None:
    from audio.echo import LeakGate

    gate = LeakGate(27.0, 6.0, 15.0, 40.0)
    for _ in range(200):
        gate.observe(30.0)  # what the leak looks like on this line
    gate.update()
    assert gate.is_echo(31.0)
    assert not gate.is_echo(20.0)  # 20 dB under a loud agent is a person, not this line's echo


def test_dead_air_is_found_under_loud_line_noise() -> None:
    c = leg(14.0, [(0.5, vowel(200, -20, 2.0))], noise_db=-46, seed=1)
    a = leg(14.0, [(10.0, vowel(110, -20, 2.0))], noise_db=-46, seed=2)
    dead = of_type(analyze(c, a), DeadAir)
    assert len(dead) == 1 and abs(dead[0].start / 8000 - 2.5) <= 0.1


def test_median_is_numpys() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 24, 25, 100):
        values = rng.normal(size=n).tolist()
        assert median(values) == float(np.median(values))


def test_calm_voice_near_the_line_noise_still_makes_a_baseline() -> None:
    # A calm voice at the level of the line noise: the segmenter's VAD barely hears it, but loudness and pitch
    # are still measured on the frames clearly above the noise. The noise-only leg learns nothing.
    calm = [(1.0 + 3.0 * k, vowel(150, -48, 2.5, phase=k)) for k in range(8)]
    c, a = leg(26.0, calm, noise_db=-48, seed=1), leg(26.0, [], noise_db=-48, seed=2)
    for settings, least, most in ((AnalyzerSettings(), 300, 2000),
                                  (AnalyzerSettings(prosody=ProsodySettings(gate_db=99.0)), 0, 50)):
        analyzer = CallAnalyzer(settings)
        analyzer.push(c, a)
        assert least <= analyzer.legs["customer"].escalation.baseline.frames <= most
        assert analyzer.legs["agent"].escalation.baseline.frames == 0


def test_a_speaker_whose_calm_level_swings_needs_a_higher_bar() -> None:
    # 24 s steady, then a minute of calm turns alternating 4 dB either side, then one +8 dB stretch of 3 s:
    # the swings seen after the first baseline raise the bar, so the stretch is within this speaker's range.
    def run(settings: Any) -> list[RaisedVoice]:
        tracker = EscalationTracker("customer", settings)
        events: list[Any] = []
        i = 0
        jitter = np.random.default_rng(3).normal(0.0, 0.5, 200).tolist()
        for k in range(48 + 120 + 6):
            level = -30.0 if k < 48 else -22.0 if k >= 168 else -34.0 + 8.0 * ((k // 10) % 2)
            events += tracker.feed(frames_at(level + jitter[k], 150, i, 25), i + 25)
            i += 25
        return of_type(events, RaisedVoice)

    assert run(CUSTOMER_ESCALATION) == []
    assert len(run(replace(CUSTOMER_ESCALATION, spread_windows=0))) == 1


def test_an_episode_goes_on_at_the_plain_bar_for_a_speaker_whose_calm_level_swings() -> None:
    # A voice whose calm turns swing 2 dB either side needs over +9 dB to start an episode; once it has started,
    # the angry phrases after it at +8 dB keep it raised, so it becomes sustained (a call to review).
    tracker = EscalationTracker("customer", CUSTOMER_ESCALATION)
    events: list[Any] = []
    i = 0
    jitter = np.random.default_rng(3).normal(0.0, 0.5, 400).tolist()
    levels = [-30.0] * 48 + [-32.0 + 4.0 * ((k // 10) % 2) for k in range(120)] + [-14.0] * 4
    levels += ([-22.0] * 4 + [-30.0] * 2) * 3  # angry phrases at +8 dB, with calmer words between them
    for k, level in enumerate(levels):
        events += tracker.feed(frames_at(level + jitter[k], 150, i, 25), i + 25)
        i += 25
    raised = of_type(events, RaisedVoice)
    assert len(raised) == 1 and raised[0].loudness_db >= 10
    sustained = of_type(events, RaisedVoiceSustained)
    assert len(sustained) == 1 and sustained[0].duration / 8000 >= 6.0


def test_loudness_is_taken_from_the_loud_frames_of_a_stretch() -> None:
    # On a noisy line most frames of a turn sit near the noise whatever the voice does; anger shows in the
    # syllable peaks. 70 % of each block at -40 dB, the rest at -30 dB calm and -22 dB raised.
    def block(i: int, peak: float) -> list[_Frame]:
        return [_Frame(i + k, -40.0 if k % 10 < 7 else peak, math.nan) for k in range(25)]

    def run(settings: Any) -> list[RaisedVoice]:
        tracker = EscalationTracker("customer", settings)
        events: list[Any] = []
        for k in range(60):
            events += tracker.feed(block(25 * k, -30.0 if k < 50 else -22.0), 25 * k + 25)
        return of_type(events, RaisedVoice)

    assert len(run(CUSTOMER_ESCALATION)) == 1
    assert run(replace(CUSTOMER_ESCALATION, level_quantile=0.5)) == []


def _detector(resumed: bool = True) -> tuple[Any, Any]:
    from audio.overlap import InterruptionDetector, VoicedHistory
    from audio.settings import InterruptionSettings

    history = VoicedHistory()
    return InterruptionDetector(replace(InterruptionSettings(), resumed_turn=resumed), history), history


def _run(detector: Any, history: Any, customer: set[int], agent: set[int], onsets: dict[int, tuple[Any, ...]],
         frames: int = 200) -> list[Any]:
    out: list[Any] = []
    for i in range(frames):
        history.append(i in customer, i in agent, False, False)
        if i in onsets:
            detector.on_onset(*onsets[i])
        out += detector.step(i)
    return out


def test_an_onset_just_after_the_other_leg_resumed_its_turn_is_still_mid_turn() -> None:
    # The customer talks from frame 0, drops out of the VAD for 0.5 s (frames 50-74: its segment closes) and
    # resumes at 75; the agent starts at 80 and keeps talking. The customer's segment is only 100 ms old, but
    # it resumed a turn: the agent interrupted it.
    customer = set(range(50)) | set(range(75, 200))
    agent = set(range(80, 200))
    onsets = {84: ("agent", 80, True, 75)}  # the agent's segment opens a few frames after its first frame
    detector, history = _detector()
    ints = [e for e in _run(detector, history, customer, agent, onsets) if isinstance(e, Interruption)]
    assert [(e.by, e.start // 160) for e in ints] == [("agent", 80)]
    # Without the rule (or when the customer had been silent before) both simply began together.
    detector, history = _detector(resumed=False)
    assert _run(detector, history, customer, agent, onsets) == []
    detector, history = _detector()
    assert _run(detector, history, set(range(75, 200)), agent, onsets) == []


def _holding(voiced: dict[str, set[int]], sound: dict[str, set[int]], onsets: dict[int, tuple[Any, ...]],
             frames: int = 260) -> list[Any]:
    """The agent holds the floor throughout; ``sound``: frames heard but not voiced (the VAD lost them)."""
    from audio.overlap import InterruptionDetector, VoicedHistory
    from audio.settings import InterruptionSettings

    history = VoicedHistory()
    detector = InterruptionDetector(InterruptionSettings(), history, holder=lambda: "agent")
    out: list[Any] = []
    for i in range(frames):
        history.append(i in voiced["customer"], i in voiced["agent"], i in sound["customer"], i in sound["agent"])
        if i in onsets:
            detector.on_onset(*onsets[i])
        out += detector.step(i)
    return [e for e in out if isinstance(e, Interruption)]


def test_a_resumed_turn_reported_twice_is_still_one_resumption() -> None:
    # The agent pauses (frames 100-124); the customer says "yeah" into the pause (105-154) and the agent carries
    # on at 125. A soft onset reports the resumption at 125, the segmenter again at 132: by then the agent's own
    # resumed voice is the last thing it said, but it is the same burst, not a new start over the customer.
    voiced = {"customer": set(range(105, 155)), "agent": set(range(100)) | set(range(125, 260))}
    onsets = {107: ("customer", 105, False, 0), 127: ("agent", 125, True, 105), 136: ("agent", 132, True, 105)}
    assert _holding(voiced, {"customer": set(), "agent": set()}, onsets) == []


def test_the_floor_holder_resuming_after_speech_the_vad_lost_is_a_resumption() -> None:
    # On a noisy line the end of the agent's phrase (frames 40-99) is heard but not voiced by the VAD; the
    # agent pauses, the customer says "okay" (105-154) and the agent carries on at 125. The pause before it was
    # short: the agent resumed its own turn.
    voiced = {"customer": set(range(105, 155)), "agent": set(range(40)) | set(range(125, 260))}
    sound = {"customer": set(), "agent": set(range(40, 100))}
    onsets = {107: ("customer", 105, False, 0), 127: ("agent", 125, True, 105)}
    assert _holding(voiced, sound, onsets) == []
    # Had the agent really been silent since frame 39, it would be a new start over the customer's turn.
    assert [e.by for e in _holding(voiced, {"customer": set(), "agent": set()}, onsets)] == ["agent"]


def test_one_candidate_per_burst_of_the_newcomer() -> None:
    # A soft onset and the segmenter's onset of the same burst, 0.3 s apart: one interruption, not two.
    detector, history = _detector()
    onsets = {84: ("agent", 80, True, 0), 99: ("agent", 95, True, 0)}
    ints = _run(detector, history, set(range(200)), set(range(80, 200)), onsets)
    assert [(e.by, e.start // 160) for e in ints if isinstance(e, Interruption)] == [("agent", 80)]


def test_the_overlap_counts_from_the_newcomers_first_sound() -> None:
    # The customer talks until frame 124 and stops; the agent's sound begins at 100 but its segment opens at
    # 112 (a soft start). Overlap from the segment: 13 frames, a turn-end overlap; from the first sound: 25.
    from audio.overlap import VoicedHistory

    def run(first_sound: int) -> list[Any]:
        history = VoicedHistory()
        detector, _ = _detector()
        detector.history = history
        out: list[Any] = []
        for i in range(200):
            history.append(i < 125, i >= 112, False, first_sound <= i < 112)
            if i == 114:
                detector.on_onset("agent", 112, True, 0)
            out += detector.step(i)
        return [e for e in out if isinstance(e, Interruption)]

    assert [(e.by, e.overlap // 160) for e in run(100)] == [("agent", 25)]
    assert run(112) == []


def test_a_soft_newcomers_pitch_bridges_the_gaps_its_level_leaves() -> None:
    # The customer talks on throughout; the agent starts at 80 and talks to the end, but on a noisy line its
    # level stands out only in stretches, with 0.42 s between them: with its pitched frames it kept talking.
    from audio.overlap import InterruptionDetector, VoicedHistory
    from audio.settings import InterruptionSettings

    heard = {i for i in range(80, 200) if (i - 80) % 41 < 20}
    pitched = set(range(80, 200))

    def run(periodic: bool) -> list[Any]:
        history = VoicedHistory()
        detector = InterruptionDetector(
            InterruptionSettings(), history,
            periodic_frames=(lambda leg, a, b: sorted(i for i in pitched if a <= i < b and leg == "agent"))
            if periodic else None)
        out: list[Any] = []
        for i in range(200):
            history.append(True, i in heard, False, False)
            if i == 84:
                detector.on_onset("agent", 80, True, 0)
            out += detector.step(i)
        return out

    assert [type(e).__name__ for e in run(periodic=True)] == ["Interruption"]
    assert [type(e).__name__ for e in run(periodic=False)] == ["Backchannel"]


def _noisy_line_talk_over(agent_s: float) -> tuple[Pcm, Pcm]:
    # Line noise at -50 dBFS; the agent's voice only ~4 dB over it, too faint and noise-like for the VAD.
    from tests.signals import noise

    c = leg(10.0, [(1.0, vowel(200, -24, 5.0))], noise_db=-50, seed=1)
    a = leg(10.0, [(3.0, noise(-46, agent_s, 5))], noise_db=-50, seed=2)
    return c, a


def test_a_soft_voice_on_a_noisy_line_can_interrupt() -> None:
    from audio.settings import InterruptionSettings

    c, a = _noisy_line_talk_over(3.0)
    ints = of_type(analyze(c, a), Interruption)
    assert [(i.by, i.of) for i in ints] == [("agent", "customer")] and abs(ints[0].start / 8000 - 3.0) <= 0.1
    off = AnalyzerSettings(interruption=replace(InterruptionSettings(), soft_onset_floor_db=0.0))
    assert of_type(analyze(c, a, off), Interruption) == []  # the VAD alone never hears it
    for chunk in (160, 333, 8000):
        assert [e.to_dict() for e in analyze(c, a, chunk=chunk)] == [e.to_dict() for e in analyze(c, a)]


def test_a_short_soft_burst_on_a_noisy_line_stays_a_backchannel() -> None:
    c, a = _noisy_line_talk_over(0.5)
    events = analyze(c, a)
    assert of_type(events, Interruption) == []
    assert [b.by for b in of_type(events, Backchannel)] == ["agent"]


def _episode(raised_blocks: int, settings: EscalationSettings = CUSTOMER_ESCALATION) -> list[Any]:
    tracker = EscalationTracker("customer", settings)
    events: list[Any] = []
    i = 0
    for _ in range(50):  # 25 s of calm speech at -30 dB, 150 Hz: a full baseline
        events += tracker.feed(frames_at(-30, 150, i, 25), i + 25)
        i += 25
    for k in range(raised_blocks + 20):
        loud = k < raised_blocks
        events += tracker.feed(frames_at(-18 if loud else -30, 190 if loud else 150, i, 25), i + 25)
        i += 25
    return events


def test_a_voice_raised_for_a_sustained_stretch_says_so_once() -> None:

    assert of_type(_episode(6), RaisedVoiceSustained) == []  # 3 s of shouting: one loud sentence
    [sustained] = of_type(_episode(20), RaisedVoiceSustained)  # 10 s
    assert sustained.duration / 8000 >= CUSTOMER_ESCALATION.sustained_ms / 1000
    assert len(of_type(_episode(20), RaisedVoice)) == 1


def test_a_provisional_baseline_needs_a_clearer_rise() -> None:
    # 4 s of quiet greeting, then normal speech 6.5 dB louder: over the bar for a full baseline, but a few seconds
    # of a voice say little about it, so no episode until the rise clears the bar by ``provisional_extra_db``.
    def run(step_db: float) -> list[RaisedVoice]:
        tracker = EscalationTracker("customer", CUSTOMER_ESCALATION)
        events: list[Any] = []
        for k in range(40):
            level = -30.0 if k < 8 else -30.0 + step_db
            events += tracker.feed(frames_at(level, 150, 25 * k, 25), 25 * k + 25)
        return of_type(events, RaisedVoice)

    assert run(6.5) == []
    assert len(run(12.0)) == 1


def test_a_quiet_greeting_does_not_hold_the_baseline_down() -> None:
    # 4 s of quiet greeting, then the speaker's normal voice 6.5 dB louder for 40 s, then a little livelier (3 dB
    # more): the baseline must learn the normal voice, or the livelier stretch reads as a sustained raise (a
    # provisional baseline that learnt only speech near it stayed at the greeting and flagged this call).
    tracker = EscalationTracker("customer", CUSTOMER_ESCALATION)
    events: list[Any] = []
    for k, level in enumerate([-30.0] * 8 + [-23.5] * 80 + [-20.5] * 40):
        events += tracker.feed(frames_at(level, 150, 25 * k, 25), 25 * k + 25)
    assert of_type(events, RaisedVoice) == []
    assert tracker.baseline.level_db is not None and tracker.baseline.level_db > -25.0


def test_a_short_overlap_is_a_cut_off_when_the_other_stops_at_full_voice() -> None:
    # The customer stops 0.45 s into the agent's talk, under ``min_overlap_ms``. Stopping as loud as they spoke,
    # mid-word, they were cut off; trailing away into the stop, they were finishing their turn.
    sharp = vowel(200, -24, 2.45)
    fading = sharp.astype(np.float64)
    n = int(0.6 * 8000)
    fading[-n:] *= np.linspace(1.0, 0.1, n)
    for customer, expected in ((sharp, ["agent"]), (fading.astype(np.int16), [])):
        c, a = call([(1.0, customer)], [(3.0, vowel(110, -24, 3.0))])
        assert [i.by for i in of_type(analyze(c, a), Interruption)] == expected


def test_the_level_history_stays_bounded_and_answers_for_recent_frames() -> None:
    from audio.overlap import LEVELS_KEPT, VoicedHistory

    h = VoicedHistory()
    for i in range(10 * LEVELS_KEPT):
        h.append(True, False, True, False, float(-i % 50), -90.0)
    assert len(h.levels["customer"]) < 2 * LEVELS_KEPT
    last = 10 * LEVELS_KEPT
    assert h.median_level("customer", last - 5, last) == sorted(float(-i % 50) for i in range(last - 5, last))[2]
    assert h.median_level("agent", last - 5, last) is None  # no frame of sound on that leg
