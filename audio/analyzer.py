"""The per-call acoustic core: two aligned legs of 8 kHz audio in, typed observations out.

Sans-I/O and synchronous: no clock, no sockets, no threads. ``push`` takes chunks of any size; everything
it returns is stamped with the amount of audio consumed, so recorded and live calls give the same events at
the same call times.
"""

from __future__ import annotations

import math
from array import array

import numpy as np
import webrtcvad
from numpy.typing import NDArray

from audio.echo import LeakGate, leak_delay
from audio.escalation import EscalationTracker, _Frame, median, semitones
from audio.events import LEGS, RATE, AcousticEvent, Leg, ProsodySample, SpeechEnded, SpeechStarted
from audio.floor import FloorTracker
from audio.frames import FRAME, FrameBuffer, RecentAudio, frame_levels_db
from audio.overlap import InterruptionDetector, VoicedHistory
from audio.pitch import Yin
from audio.settings import AnalyzerSettings
from audio.vad import FrameClassifier, Segmenter, SpeechLevel


def _above_noise(level_db: float, floor_db: float | None) -> float:
    """A frame's level with the noise floor's power taken out (never more than 10 dB down)."""
    if floor_db is None:
        return level_db
    excess = 10.0 ** ((level_db - floor_db) / 10.0) - 1.0
    return floor_db + 10.0 * math.log10(max(excess, 10.0 ** ((level_db - floor_db - 10.0) / 10.0)))


def _steady_tone(f0: NDArray[np.float64], voiced: NDArray[np.bool_], spread_st: float,
                 width_st: float) -> NDArray[np.bool_]:
    """Which of the voiced frames are a steady tone: half of them within ``spread_st`` of their median pitch, and
    those within ``width_st`` of it."""
    tone = np.zeros(len(f0), dtype=bool)
    if voiced.sum() < 5:
        return tone
    st = 12.0 * np.log2(np.where(voiced, f0, 1.0))
    middle = float(np.median(st[voiced]))
    if np.mean(np.abs(st[voiced] - middle) < spread_st) >= 0.5:
        tone = voiced & (np.abs(st - middle) < width_st)
    return tone


class _LegState:
    def __init__(self, leg: Leg, settings: AnalyzerSettings, yin: Yin) -> None:
        self.leg = leg
        self.classifier = FrameClassifier(settings.vad, RATE)
        v = settings.vad
        self.speech_level = SpeechLevel(v.vad_target_db, v.vad_max_gain_db, v.vad_peak_decay_db_per_s,
                                        v.vad_noise_ceiling_db)
        self.block_peak_db = -200.0
        self.segmenter = Segmenter(leg, settings.vad)
        self.soft = Segmenter(leg, settings.vad)
        """The same onset rule on frames above the noise floor (``soft_onset_gate_db``), voiced or not: onsets for
        interruptions on a noisy leg, whose calm voice the VAD misses."""
        esc = settings.customer_escalation if leg == "customer" else settings.agent_escalation
        self.escalation = EscalationTracker(leg, esc)
        self.block_frames: list[int] = []  # speech frames of the current block (indices)
        self.block_levels: list[float] = []
        self.block_soft: list[bool] = []  # taken on level and periodicity alone, not by the segmenter


class CallAnalyzer:
    """Interruptions, backchannels, raised voice per leg, dead air, monologues, speech segments, prosody."""

    def __init__(self, settings: AnalyzerSettings | None = None) -> None:
        self.settings = settings or AnalyzerSettings()
        s = self.settings
        self.yin = Yin(s.pitch, RATE)
        self.legs = {leg: _LegState(leg, s, self.yin) for leg in LEGS}
        self.history = VoicedHistory()
        self.floor = FloorTracker(s.floor)
        self.interruptions = InterruptionDetector(s.interruption, self.history, self._last_periodic,
                                                  self._voicing, lambda: self.floor.holder, self._periodic)
        self.buffer = FrameBuffer()
        self.frames = 0
        """Frames consumed so far: ``frames * FRAME`` samples is the call time of everything emitted."""
        self.block = max(1, s.prosody_block_ms // 20)
        self._echo_frames = max(1, s.vad.echo_window_ms // 20)
        v = s.vad
        self.echo = self._leak_gate(v.echo_margin_db, alone=True)
        """The agent's voice on the customer leg (line echo)."""
        self.crosstalk = self._leak_gate(math.inf, alone=False)
        """The customer's voice on the agent leg (a headset's speaker heard by its microphone). Open until a
        systematic leak shows: an agent's leg has no line echo, and a quiet agent under a loud customer, not
        talking, is what a default margin would otherwise mute."""
        self._gates: dict[Leg, LeakGate] = {"customer": self.echo, "agent": self.crosstalk}
        """Each leg's gate against the other voice leaking into it."""
        self._agent_levels: list[float] = []
        self._customer_levels: list[float] = []
        self._max_lag = max(0, v.leak_max_delay_ms // 20)
        self._lag: dict[Leg, int | None] = dict.fromkeys(LEGS)
        """Per leg, the delay (frames) of the other voice's leak into it, once found."""
        self._leak_win: dict[Leg, tuple[slice, slice] | None] = dict.fromkeys(LEGS)
        """Per leg, where in the other leg's level log its leak comes from, once its delay is known
        (``_leak_windows``)."""
        self._level_log: dict[Leg, array[float]] = {leg: array("f") for leg in LEGS}
        self._log_span = max(v.leak_delay_span_ms // 20 + self._max_lag, self._max_lag + self._echo_frames)
        """Both legs' last frame levels: the span a leak's delay is judged on, and at least the delayed windows
        read from it (kept between ``_log_span`` and twice that)."""
        self._plain_vad = (webrtcvad.Vad(s.floor.plain_vad_mode), webrtcvad.Vad(s.floor.plain_vad_mode))
        # Recent audio of both legs, so a frame's pitch can look back across chunk edges, and the interruption
        # check back over its decision window.
        lookback = int(s.interruption.lookback_ms * RATE / 1000)
        self._recent = RecentAudio(self.yin.span + max(self.block * FRAME, lookback), self.yin.span)
        # YIN per (leg, frame): a frame's pitch depends only on the samples ending with it, and the echo check
        # asks for the agent's recent frames again and again while a customer talks over them.
        self._pitch_memo: tuple[dict[int, tuple[float, float]], dict[int, tuple[float, float]]] = ({}, {})

    def _leak_gate(self, default_margin_db: float, alone: bool) -> LeakGate:
        v = self.settings.vad
        return LeakGate(default_margin_db, v.echo_headroom_db, v.echo_min_margin_db, v.echo_max_margin_db,
                        leak_share=v.leak_share, leak_spread_db=v.leak_spread_db, leak_min_loss_db=v.leak_min_loss_db,
                        leak_min_margin_db=v.leak_min_margin_db, leak_min_frames=v.leak_min_frames, alone=alone)

    @property
    def samples(self) -> int:
        return self.frames * FRAME

    def push(self, customer: NDArray[np.int16], agent: NDArray[np.int16]) -> list[AcousticEvent]:
        frames = self.buffer.push(customer, agent)
        out: list[AcousticEvent] = []
        n = frames.shape[1]
        if n == 0:
            return out
        levels = frame_levels_db(frames.reshape(2 * n, FRAME)).reshape(2, n).tolist()
        self._recent.append(frames.reshape(2, n * FRAME))
        cust, agt = self.legs["customer"], self.legs["agent"]
        # The VAD hears each frame lifted by its leg's gain as it stands before that frame (the gain follows the
        # noise floor frame by frame and the speech peak block by block). Scaled for the whole chunk at once, and
        # again for a frame only where its gain has moved since: events do not depend on the chunk size.
        chunk_gain = [st.speech_level.gain(st.classifier.floor.db) for st in (cust, agt)]
        raw = np.clip(np.rint(frames.reshape(2, n * FRAME) * np.array(chunk_gain)[:, None]), -32768,
                      32767).astype("<i2").reshape(2, n, FRAME)
        sound_gate = self.settings.floor.sound_gate_db
        prosody = self.settings.prosody
        soft_floor = self.settings.interruption.soft_onset_floor_db or math.inf
        soft_gate = self.settings.interruption.soft_onset_gate_db
        own_voice = self.settings.interruption.own_voice_below_db
        loud = self.settings.vad.leak_loud_db
        # A leg's own voice: not far under its calm speech level (its loud-speech peak until that is known; the
        # peak alone would hold the bar up for a while after a shout).
        cust_voice, agt_voice = (
            (st.escalation.baseline.level_db or st.speech_level.peak_db or -200.0) - own_voice for st in (cust, agt))
        agent_levels, customer_levels = self._agent_levels, self._customer_levels
        log_c, log_a = self._level_log["customer"], self._level_log["agent"]
        for k in range(n):
            i = self.frames
            lc, la = levels[0][k], levels[1][k]
            log_c.append(lc)
            log_a.append(la)
            agent_levels.append(la)
            customer_levels.append(lc)
            if len(agent_levels) > self._echo_frames:
                del agent_levels[0]
                del customer_levels[0]
            # The leaking voice's level over the leak window: where its leak into this frame comes from (the last
            # ``echo_window_ms`` until the leak's delay is known, then around that delay).
            win_c, win_a = self._leak_win["customer"], self._leak_win["agent"]
            peak_c, peak_a = max(customer_levels), max(agent_levels)
            src_a = peak_a if win_c is None else max(log_a[win_c[0]], default=-200.0)
            src_c = peak_c if win_a is None else max(log_c[win_a[0]], default=-200.0)
            loss = src_a - lc
            echo = self.echo.is_echo(loss)
            cross_loss = src_c - la
            cross = self.crosstalk.is_echo(cross_loss)
            vc = not echo and cust.classifier.is_speech(self._lifted(raw, frames, 0, k, chunk_gain[0], cust), lc)
            va = not cross and agt.classifier.is_speech(self._lifted(raw, frames, 1, k, chunk_gain[1], agt), la)
            audible = lc > (cust.classifier.floor.db or 0.0) + sound_gate
            sc = not echo and audible
            audible_a = la > (agt.classifier.floor.db or 0.0) + sound_gate
            sa = not cross and audible_a
            # A leak's strength is learnt between both legs' peaks over the leak window: the leak follows its source
            # a few frames late, and a frame-by-frame loss swings with every syllable; peaks do not. Once its delay
            # is known, against the source's peak where this leg's last frames' leak came from.
            if va:
                self.echo.learn(la >= (agt.speech_level.peak_db or -200.0) - loud,
                                (peak_a if win_c is None else max(log_a[win_c[1]], default=-200.0)) - peak_c,
                                audible, cust.segmenter.in_speech, loss, i)
            if vc:
                self.crosstalk.learn(lc >= (cust.speech_level.peak_db or -200.0) - loud,
                                     (peak_c if win_a is None else max(log_c[win_a[1]], default=-200.0)) - peak_a,
                                     audible_a, agt.segmenter.in_speech, cross_loss, i)
            self.history.append(vc, va, sc and lc > cust_voice, sa and la > agt_voice, lc, la)
            if lc > cust.block_peak_db:
                cust.block_peak_db = lc
            if la > agt.block_peak_db:
                agt.block_peak_db = la
            for st, voiced, level, quiet, ot in ((cust, vc, lc, echo, agt), (agt, va, la, cross, cust)):
                ev = st.segmenter.step(i, voiced)
                if ev is not None:
                    out.append(ev)
                    self._on_segment(ev)
                floor = st.classifier.floor.db
                onset = st.soft.step(i, voiced or (not quiet and floor is not None and level > floor + soft_gate))
                if isinstance(onset, SpeechStarted) and not st.segmenter.in_speech \
                        and floor is not None and floor > soft_floor:
                    # A noisy leg: a run of frames above its floor is an onset for interruptions too.
                    self.interruptions.on_onset(st.leg, onset.start // FRAME, ot.segmenter.in_speech,
                                                ot.segmenter.start_frame)
                soft = not (voiced and st.segmenter.in_speech)
                if soft and (quiet or floor is None or level <= floor + prosody.gate_db
                             or level < (st.speech_level.peak_db or 0.0) - prosody.below_peak_db):
                    continue
                st.block_frames.append(i)
                st.block_levels.append(_above_noise(level, floor) if prosody.noise_compensated else level)
                st.block_soft.append(soft)
            out.extend(self.interruptions.step(i))
            sound = sc or sa
            if self.floor.silence_since is not None:
                # In a joint silence, a plain VAD on the raw line too: it hears a murmur under the noise that our
                # gates drop. It runs from the start of the silence, so its own noise model has settled by the
                # time its votes count (``listening``), and costs nothing while anyone talks.
                plain_c = self._plain_vad[0].is_speech(frames[0, k].astype("<i2").tobytes(), RATE) and not echo
                plain_a = self._plain_vad[1].is_speech(frames[1, k].astype("<i2").tobytes(), RATE) and not cross
                sound = sound or (self.floor.listening(i) and (plain_c or plain_a))
            out.extend(self.floor.step(i, sound))
            self.frames += 1
            if self.frames % self.block == 0:
                out.extend(self._close_block())
        return out

    def _last_periodic(self, leg: Leg, first: int, last: int) -> int:
        """Last frame in [first, last) whose pitch is clear, or -1 (``_periodic``)."""
        hits = self._periodic(leg, first, last)
        return hits[-1] if hits else -1

    def _periodic(self, leg: Leg, first: int, last: int) -> list[int]:
        """Frames in [first, last) whose pitch is clear (YIN aperiodicity under the soft-voicing bar).

        A frame whose pitch matches the other leg's a few frames earlier is that voice leaking in (the agent's
        echo on the customer leg, the customer's crosstalk on the agent's): periodic, but not this leg talking.
        """
        row = 0 if leg == "customer" else 1
        lags = self._lags(row)
        lo = max(first, (self._recent.origin + self.yin.span) // FRAME + lags.stop, 0)
        frames = list(range(lo, min(last, self.frames + 1)))
        if not frames:
            return []
        f0, aperiodicity = self._pitch(row, frames)
        # Digital silence and a few bits of dither are "periodic" to YIN (a difference function of zeros): a
        # frame must hold some sound, however far under the line noise its voice is.
        audible = np.array([self.history.level(leg, i) > self.settings.vad.absolute_floor_db for i in frames])
        voiced = (aperiodicity < self.settings.interruption.soft_voicing) & audible
        soft = self.settings.interruption
        voiced &= ~_steady_tone(f0, voiced, soft.tone_spread_st, soft.tone_width_st) & ~(f0 < soft.soft_min_hz)
        if voiced.any() and self._following(row, frames, f0, voiced) >= max(3, 0.6 * voiced.sum()):
            voiced[:] = False
        return [frames[int(k)] for k in np.flatnonzero(voiced)]

    def _following(self, row: int, frames: list[int], f0: NDArray[np.float64], voiced: NDArray[np.bool_]) -> int:
        """How many of leg ``row``'s ``voiced`` frames follow the other leg's pitch at the best of the leak's lags.

        A leak has one fixed delay: at the best lag most of its voiced frames follow the other's pitch. Chance
        matches scatter over lags and frames, so a speaker who talks is not counted as following."""
        lags = self._lags(row)
        other_f0, _ = self._pitch(1 - row, [i - lag for i in frames for lag in lags])
        # NaN compares False: an unvoiced source leaks no pitch.
        same = np.abs(other_f0.reshape(len(frames), len(lags)) / f0[:, None] - 1.0) < 0.03
        return int(same[voiced].sum(axis=0).max())

    def _check_leak(self, row: int, gate: LeakGate) -> None:
        """A leak learnt from levels alone is checked against pitch, block by block until it is confirmed or
        rejected: a leak follows its source's pitch a few frames late; a person talking over the other at a steady
        level below them (double talk in the first seconds of a call, a long interruption) does not, and must not
        be gated as one. With too little pitch to tell, the level evidence stands meanwhile."""
        s = self.settings.vad
        frames = [i for i in gate.evidence(s.leak_check_frames)
                  if i >= (self._recent.origin + self.yin.span) // FRAME + self._lags(row).stop]
        if len(frames) < s.leak_check_min_voiced:
            return
        f0, aperiodicity = self._pitch(row, frames)
        voiced = aperiodicity < self.settings.interruption.soft_voicing
        if voiced.sum() < s.leak_check_min_voiced:
            return
        follows = self._following(row, frames, f0, voiced) / voiced.sum()
        if follows >= s.leak_check_share:
            gate.confirmed = True
        elif follows < s.leak_check_share / 2:
            gate.reject()

    def _voicing(self, leg: Leg, first: int, last: int) -> float:
        """Share of the leg's frames of sound in [first, last) whose pitch is clear (1.0 when none is known).

        Not judged (1.0) on a noisy line (``soft_onset_floor_db``): there a soft voice's pitch drowns in the noise
        that the frame's level is mostly made of."""
        floor = self.legs[leg].classifier.floor.db
        if floor is None or floor > (self.settings.interruption.soft_onset_floor_db or math.inf):
            return 1.0
        lo = max(first, (self._recent.origin + self.yin.span) // FRAME, 0)
        sound = self.history.sound[leg]
        frames = [i for i in range(lo, min(last, self.frames + 1)) if sound[i]]
        if not frames:
            return 1.0
        _, aperiodicity = self._pitch(0 if leg == "customer" else 1, frames)
        return float(np.mean(aperiodicity < self.settings.interruption.soft_voicing))

    def _pitch(self, row: int, frames: list[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """YIN (f0, aperiodicity) of these frames of one leg, each frame estimated once per call."""
        memo = self._pitch_memo[row]
        todo = sorted({i for i in frames if i not in memo})
        if todo:
            f0, ap = self.yin.estimate(self._windows(row, todo))
            memo.update(zip(todo, zip(f0.tolist(), ap.tolist(), strict=True), strict=True))
            if len(memo) > 4 * self._recent.keep // FRAME:
                oldest = self._recent.origin // FRAME
                for i in [i for i in memo if i < oldest]:
                    del memo[i]
        got = [memo[i] for i in frames]
        return np.array([g[0] for g in got]), np.array([g[1] for g in got])

    def _windows(self, row: int, frames: list[int]) -> NDArray[np.float64]:
        """The ``yin.span`` samples ending with each frame, from the recent audio of one leg."""
        span, audio, origin = self.yin.span, self._recent.view()[row], self._recent.origin
        ends = [(i + 1) * FRAME - origin for i in frames]
        return np.stack([audio[e - span: e] for e in ends]).astype(np.float64)

    def _leak_windows(self, lag: int) -> tuple[slice, slice]:
        """Where in the other leg's level log (newest last) the leak into this leg's newest frame comes from: the
        ``echo_window_ms`` around the leak's delay; and where the leak in this leg's last ``echo_window_ms`` came
        from (their peaks are compared)."""
        w = self._echo_frames
        stop = min(0, -lag + w // 2)
        return slice(stop - w, stop or None), slice(-lag - w, -lag or None)

    def _lags(self, row: int) -> range:
        """The delays (frames) at which the other leg's voice may leak into leg ``row``."""
        lag, w = self._lag[LEGS[row]], self._echo_frames
        first = 0 if lag is None else max(0, lag - w // 2)
        return range(first, first + w)

    def _find_leak_delays(self, now: int) -> None:
        """Looks for each leak's delay: often while the leg is heard under much of the other's loud speech and no
        delay is known yet (a leak may be there), rarely otherwise (to follow a change at little cost)."""
        v = self.settings.vad
        every = max(1, v.leak_delay_every_ms // 20)
        span = self._log_span
        pairs: tuple[tuple[Leg, Leg], ...] = (("customer", "agent"), ("agent", "customer"))
        for into, source in pairs:
            suspect = self._lag[into] is None and self._gates[into].heard_share() >= v.leak_delay_share
            if now % (every if suspect else 12 * every) >= self.block:
                continue
            src = np.frombuffer(self._level_log[source], dtype=np.float32)[-span:]
            dst = np.frombuffer(self._level_log[into], dtype=np.float32)[-span:]
            found = leak_delay(src, dst, self._max_lag)
            if found is not None:
                self._lag[into] = found
                self._leak_win[into] = self._leak_windows(found)

    @staticmethod
    def _lifted(raw: NDArray[np.int16], frames: NDArray[np.int16], row: int, k: int, chunk_gain: float,
                st: _LegState) -> bytes:
        """Frame ``k`` of one leg as the VAD hears it: lifted by the leg's gain before this frame."""
        gain = st.speech_level.gain(st.classifier.floor.db)
        if gain == chunk_gain:
            return bytes(raw[row, k].tobytes())
        return bytes(np.clip(np.rint(frames[row, k] * gain), -32768, 32767).astype("<i2").tobytes())

    def _on_segment(self, ev: SpeechStarted | SpeechEnded) -> None:
        f = FRAME
        if isinstance(ev, SpeechStarted):
            other = self.legs["agent" if ev.leg == "customer" else "customer"].segmenter
            self.interruptions.on_onset(ev.leg, ev.start // f, other.in_speech, other.start_frame)
            self.floor.on_start(ev.leg, ev.start // f)
        else:
            self.floor.on_end(ev.leg, ev.start // f, ev.end // f)

    def _close_block(self) -> list[AcousticEvent]:
        out: list[AcousticEvent] = []
        now = self.frames
        for log in self._level_log.values():
            if len(log) >= 2 * self._log_span:
                del log[:-self._log_span]
        if self._max_lag:
            self._find_leak_delays(now)
        for j, leg in enumerate(LEGS):
            st = self.legs[leg]
            frames: list[_Frame] = []
            if st.block_frames:
                f0, ap = self._pitch(j, st.block_frames)
                periodic = self.settings.prosody.aperiodicity
                for i, level, hz, a, soft in zip(st.block_frames, st.block_levels, f0.tolist(), ap.tolist(),
                                                 st.block_soft, strict=True):
                    if not soft or a < periodic:
                        frames.append(_Frame(i, level, semitones(hz) if hz == hz else math.nan))
            if frames:
                pitches = sorted(f.pitch_st for f in frames if f.pitch_st == f.pitch_st)
                base_l, base_p = st.escalation.baseline.level_db, st.escalation.baseline.pitch_st
                out.append(ProsodySample(
                    leg, frames[0].index * FRAME, (frames[-1].index + 1) * FRAME,
                    median([f.level_db for f in frames]),
                    2.0 ** (median(pitches) / 12.0) if pitches else 0.0,
                    base_l, None if base_p is None else 2.0 ** (base_p / 12.0), now * FRAME))
            st.block_frames, st.block_levels, st.block_soft = [], [], []
            st.speech_level.update(st.block_peak_db, self.block * FRAME / RATE)
            gate = self._gates[leg]
            gate.update()
            if gate.systematic and not gate.confirmed:
                self._check_leak(j, gate)
            st.block_peak_db = -200.0
            out.extend(st.escalation.feed(frames, now))
        return out

    def finish(self) -> list[AcousticEvent]:
        """End of the call: close open segments and episodes. Audio short of a whole frame is dropped."""
        out: list[AcousticEvent] = []
        for leg in LEGS:
            st = self.legs[leg]
            ev = st.segmenter.close(self.frames)
            if ev is not None:
                out.append(ev)
                self._on_segment(ev)
            out.extend(st.escalation.close(self.frames))
        return out
