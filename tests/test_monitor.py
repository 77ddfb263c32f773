"""The per-call monitor: segments for the recogniser, and what transcripts turn into."""

from __future__ import annotations

import numpy as np

from audio.events import Interruption
from service.analysis.monitor import CallMonitor, MonitorSettings
from tests.signals import leg, vowel


def run(monitor: CallMonitor, c: np.ndarray, a: np.ndarray, chunk: int = 160) -> list:  # type: ignore[type-arg]
    out = []
    for i in range(0, len(c), chunk):
        out += monitor.push(c[i: i + chunk], a[i: i + chunk])
    return out + monitor.finish()


def test_segments_carry_their_audio_with_padding() -> None:
    c = leg(6.0, [(1.0, vowel(200, -24, 2.0))], seed=1)
    a = leg(6.0, [(3.5, vowel(110, -24, 1.5))], seed=2)
    m = CallMonitor()
    run(m, c, a)
    segs = m.take_segments()
    assert [s.leg for s in segs] == ["customer", "agent"]
    cust = segs[0]
    assert abs(cust.start_s - 0.8) <= 0.06 and abs(cust.end_s - 3.2) <= 0.06
    first = int(round(cust.start_s * 8000))
    assert np.array_equal(cust.audio, c[first: first + len(cust.audio)])
    assert m.take_segments() == []


def test_long_turns_are_sent_in_pieces() -> None:
    parts = [(0.5 + 2.1 * k, vowel(150, -24, 2.0, phase=k)) for k in range(6)]
    m = CallMonitor(MonitorSettings(max_segment_s=5.0))
    run(m, leg(14.0, parts, seed=1), leg(14.0, [], seed=2))
    segs = m.take_segments()
    assert len(segs) >= 3 and not segs[0].final and segs[-1].final
    assert all(s.end_s - s.start_s <= 5.5 for s in segs)


def test_transcripts_are_redacted_and_cues_found() -> None:
    m = CallMonitor(language="en")
    events = m.add_transcript("customer", 1.0, 4.0, "This is ridiculous, my card is 4111 1111 1111 1111",
                              [("This", 1.0, 1.2)], "en")
    utt = [e.to_dict() for e in events if e.type == "utterance"][0]
    assert "4111" not in str(utt["text"]) and "words" not in utt
    assert any(e.type == "phrase" and e.to_dict()["category"] == "frustration" for e in events)
    agent = m.add_transcript("agent", 5.0, 7.0, "I'm so sorry, I understand how frustrating this is", (), "en")
    assert {e.to_dict()["category"] for e in agent if e.type == "phrase"} >= {"apology", "empathy"}


def test_words_confirm_a_backchannel_and_retract_the_interruption() -> None:
    m = CallMonitor(language="en")
    m._interruptions.append(Interruption("agent", "customer", 8000 * 10, 4000, 8000 * 11))
    events = m.add_transcript("agent", 9.9, 11.3, "Okay, right.", (), "en")
    bc = [e.to_dict() for e in events if e.type == "backchannel"]
    assert len(bc) == 1 and bc[0]["retracts"]["type"] == "interruption"  # type: ignore[index]
    again = m.add_transcript("agent", 9.9, 11.3, "Okay, right.", (), "en")
    assert [e for e in again if e.type == "backchannel"] == []


def test_real_words_do_not_retract_an_interruption() -> None:
    m = CallMonitor(language="en")
    m._interruptions.append(Interruption("agent", "customer", 8000 * 10, 4000, 8000 * 11))
    events = m.add_transcript("agent", 9.9, 13.0, "No, listen, the policy does not cover that", (), "en")
    assert [e for e in events if e.type == "backchannel"] == []


def test_whispers_spellings_of_a_continuer_retract_the_interruption() -> None:
    for text in ("Uh -huh.", "Mm-hmm.", "Ha ha ha!", "(laughs)", "Да-да.", "Ага-ага"):
        m = CallMonitor(language=None)
        m._interruptions.append(Interruption("agent", "customer", 8000 * 10, 4000, 8000 * 11))
        events = m.add_transcript("agent", 9.9, 11.3, text, (), None)
        assert [e.type for e in events if e.type == "backchannel"] == ["backchannel"], text


def test_a_detail_said_back_is_not_an_interruption_whichever_transcript_comes_first() -> None:
    said = "this one will be a 2018 Tesla model"
    # The customer's words first, then the agent's.
    m = CallMonitor(language="en")
    m.add_transcript("customer", 7.0, 12.0, said, (), "en")
    m._interruptions.append(Interruption("agent", "customer", 8000 * 10, 4000, 8000 * 11))
    assert [e.type for e in m.add_transcript("agent", 9.9, 11.0, "2018.", (), "en")] == ["utterance", "backchannel"]
    # The agent's words first: withdrawn when the customer's arrive.
    m = CallMonitor(language="en")
    m._interruptions.append(Interruption("agent", "customer", 8000 * 10, 4000, 8000 * 11))
    assert [e.type for e in m.add_transcript("agent", 9.9, 11.0, "2018.", (), "en")] == ["utterance"]
    events = m.add_transcript("customer", 7.0, 12.0, said, (), "en")
    [bc] = [e.to_dict() for e in events if e.type == "backchannel"]
    assert bc["by"] == "agent" and bc["retracts"]["start"] == 10.0  # type: ignore[index]
    # Words the customer never said stay an interruption.
    m = CallMonitor(language="en")
    m.add_transcript("customer", 7.0, 12.0, said, (), "en")
    m._interruptions.append(Interruption("agent", "customer", 8000 * 10, 4000, 8000 * 11))
    assert [e.type for e in m.add_transcript("agent", 9.9, 11.0, "A 2020 one.", (), "en")] == ["utterance"]


def test_one_fast_greeting_is_not_fast_speech() -> None:
    m = CallMonitor(language="en")
    greeting = "Thank you for calling Platinum Motors, the North West home for high-end autos. I'm Michelle, how can I"
    words = [(w, 0.2 + i * 0.27, 0.2 + i * 0.27 + 0.2) for i, w in enumerate(greeting.split())]  # 6 s, ~220 wpm
    events = m.add_transcript("agent", 0.2, 6.1, greeting, words, "en")
    assert [e for e in events if e.type == "speaking_rate"] == []


def test_fast_speech_is_reported_once_per_cooldown() -> None:
    m = CallMonitor(language="en")
    words = [(f"w{i}", 10 + i * 0.2, 10 + i * 0.2 + 0.15) for i in range(120)]  # 300 words per minute, 24 s
    first = m.add_transcript("agent", 10.0, 34.0, " ".join(w for w, _, _ in words), words, "en")
    rate = [e.to_dict() for e in first if e.type == "speaking_rate"]
    assert len(rate) == 1 and float(rate[0]["wpm"]) > 250  # type: ignore[arg-type]
    assert 20 <= float(rate[0]["seconds"]) <= 25  # type: ignore[arg-type]  # how long it was judged over
    later = [(w, s + 24, e + 24) for w, s, e in words]
    second = m.add_transcript("agent", 34.0, 58.0, " ".join(w for w, _, _ in later), later, "en")
    assert [e for e in second if e.type == "speaking_rate"] == []


def test_plain_transcripts_pass_through_trimmed() -> None:
    events = CallMonitor().add_transcript("customer", 0.0, 1.0, " hello ", (), "en")
    assert [e.to_dict()["text"] for e in events] == ["hello"]


def test_without_a_recogniser_the_events_are_the_same_and_no_audio_is_kept() -> None:
    customer = leg(6.0, [(0.5, vowel(180, -20, 2.0)), (3.0, vowel(190, -18, 1.5))])
    agent = leg(6.0, [(1.8, vowel(120, -20, 2.0))], seed=1)
    with_asr, without = CallMonitor(), CallMonitor(segments=False)
    got = []
    for m in (with_asr, without):
        evs = []
        for i in range(0, len(customer), 800):
            evs += [e.to_dict() for e in m.push(customer[i:i + 800], agent[i:i + 800])]
        evs += [e.to_dict() for e in m.finish()]
        got.append(evs)
    assert got[0] == got[1] and got[0]
    assert with_asr.take_segments() and without.take_segments() == []
