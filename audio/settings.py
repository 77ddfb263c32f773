"""Every detection threshold as a named, documented setting. Defaults and their sources: docs/detectors.md."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class VadSettings:
    aggressiveness: int = 3
    """webrtcvad mode 0..3; 3 rejects the most line noise."""
    snr_gate_db: float = 4.0
    """A frame counts as speech only this far above the leg's tracked noise floor: webrtcvad alone fires on noise."""
    absolute_floor_db: float = -62.0
    """Frames quieter than this (dBFS) are never speech, whatever the VAD says."""
    floor_rise_db_per_s: float = 0.5
    """How fast the noise-floor estimate may climb during long speech; it falls at once on quieter frames."""
    echo_margin_db: float = 27.0
    """Until the call's echo loss is learnt: a customer frame this far below the agent's recent level is echo."""
    echo_headroom_db: float = 6.0
    """Once learnt, frames up to this much above the expected echo still count as echo."""
    echo_min_margin_db: float = 15.0
    echo_max_margin_db: float = 40.0
    echo_window_ms: int = 120
    """How far back the other leg's level is looked at for a leak (line echo, crosstalk delay), until the leak's
    own delay is known."""
    leak_max_delay_ms: int = 500
    """The longest leak delay looked for. A line echo comes back 20-100 ms late on a domestic line and later over
    mobile and VoIP paths; a softphone's headset crosstalk reaches the recording after the client's jitter
    buffer, playout and capture, often 100-300 ms. Found by ``audio.echo.leak_delay`` from both legs' level
    contours; the leak window then sits around that delay."""
    leak_delay_every_ms: int = 2500
    leak_delay_share: float = 0.2
    """How often the delay is looked for while this leg is heard in ``leak_delay_share`` of the other's loud
    frames and no delay is known yet; twelve times less often otherwise (every 30 s), to follow a change at little
    cost. Legs without a leak are heard in 0-17 % of them (overlapping talk), legs with one in 30-80 %."""
    leak_delay_span_ms: int = 15000
    """The stretch of both legs' levels the delay is judged on."""
    leak_share: float = 0.3
    leak_spread_db: float = 8.0
    leak_min_loss_db: float = 9.0
    leak_min_margin_db: float = 6.0
    leak_loud_db: float = 12.0
    leak_min_frames: int = 50
    """A systematic leak (``audio.echo.LeakGate``): over ``leak_min_frames`` of the source's loud voiced frames
    (within ``leak_loud_db`` of its loud-speech peak: its soft ones leak under the line noise, leak or no leak),
    heard in ``leak_share`` of them, its loss steady (middle half within ``leak_spread_db``) and at least
    ``leak_min_loss_db`` (a hybrid returns at least 6 dB less, G.168); the margin then at least
    ``leak_min_margin_db``. Measured with ``benchmarks.robustness`` on the real call lca-40 with the agent's
    echo 12 or 20 dB down, the customer's voice 20 dB down on the agent leg, or both: no wrong alert and no
    flag, where before each gave 4-36 false interruptions; and with ``benchmarks.detectors --echo-db -15`` /
    ``--crosstalk-db -20`` on six generated sets: 121 false alarms where there were 1,599."""
    leak_check_frames: int = 50
    leak_check_min_voiced: int = 10
    leak_check_share: float = 0.5
    """A systematic leak, once learnt, is checked against pitch: of this leg's last ``leak_check_frames`` frames
    heard under the source's loud speech, the clearly pitched ones (at least ``leak_check_min_voiced``) must follow
    the source's pitch at one delay in ``leak_check_share`` of them to confirm it; under half that share it was a
    person talking over the other at a steady level, not a leak, and is forgotten."""
    vad_target_db: float = -20.0
    """Level (dBFS) the leg's loud speech is brought to before webrtcvad: it misses quiet speech otherwise."""
    vad_max_gain_db: float = 30.0
    vad_noise_ceiling_db: float = -42.0
    """The VAD gain stops where it would lift the leg's noise floor above this."""
    vad_peak_decay_db_per_s: float = 1.0
    """How fast the tracked speech peak forgets a loud moment (the VAD gain recovers at this rate)."""
    onset_ms: int = 100
    """Voiced time needed to open a segment: drops clicks and short bursts."""
    onset_window_ms: int = 140
    """...within this many milliseconds (the voiced frames need not be contiguous)."""
    hangover_ms: int = 300
    """Silence that closes a segment; shorter gaps are bridged as within-turn pauses."""


@dataclass(frozen=True, slots=True)
class InterruptionSettings:
    simultaneous_start_ms: int = 250
    """If both legs began within this, nobody is blamed."""
    resumed_turn: bool = True
    """...unless the other leg's segment only resumed its turn: it was voiced within ``mid_turn_pause_ms``
    before that segment began (on a noisy line soft speech drops out of the VAD and closes a segment mid-turn)."""
    min_overlap_ms: int = 500
    """Both legs talking at once for at least this long (the other's pauses of up to ``bridge_ms`` included)."""
    abrupt_min_overlap_ms: int = 400
    """A shorter overlap, from this long, still counts when the other stopped at full voice: its last 200 ms no
    more than ``abrupt_drop_db`` quieter than its speech in the second before the onset. A turn that ends falls
    in level into its last word (a terminal overlap); a speaker cut off stops mid-word, as loud as before."""
    abrupt_drop_db: float = 0.0
    still_talking_ms: int = 160
    """At the decision, the newcomer still counts as talking if heard this recently (a pause inside a word)."""
    mid_turn_pause_ms: int = 800
    """The other leg still holds its turn if it was voiced this recently before the onset."""
    continuing_ms: int = 500
    """...and it must be heard again within this much after the onset to count as talked over."""
    soft_voicing: float = 0.25
    """YIN aperiodicity under which a frame too faint for the VAD still counts as the other leg talking."""
    soft_min_hz: float = 65.0
    """...and not under this pitch: mains hum (50 or 60 Hz) under line noise shows as scattered pitched frames at
    60 Hz, too few to read as a steady tone. Voices go lower only in creak."""
    tone_spread_st: float = 0.1
    tone_width_st: float = 0.5
    """...and not a steady tone: half or more of the pitched frames asked about within ``tone_spread_st``
    semitones (0.6 %) of their median pitch is a tone (mains hum, a line's test tone, a fan; a voice's pitch moves
    more than that within 100 ms), and the frames within ``tone_width_st`` of it are that tone (a breath or a
    murmur over it shifts YIN a little)."""
    soft_onset_floor_db: float = -58.0
    """On a leg whose noise floor is above this (dBFS: a noisy phone line), a run of frames above the floor
    (``soft_onset_gate_db``; the segmenter's ``onset_ms`` within ``onset_window_ms``) is an onset for
    interruptions too, though the VAD missed it: a calm voice a few dB over line noise rarely opens a segment
    in time. Short bursts stay backchannels (``min_burst_ms``). 0: off."""
    soft_onset_gate_db: float = 3.0
    """How far over the leg's noise floor a frame counts toward that onset (echo on the customer leg never)."""
    lookback_ms: int = 2500
    """Audio kept for that check: the decision window plus the pause before the onset."""
    min_burst_ms: int = 1000
    """The newcomer must keep talking this long: shorter bursts are backchannels. Also the earliest decision."""
    competitive_ms: int = 1300
    """Both legs still talking this long after the onset is competitive overlap: an interruption (1.3 s keeps the
    decision within 1.5 s). Until then a
    newcomer that stops first was giving a (long) listener response, and the decision waits for one of the two
    to give way; a cut-off (the other stopped) is decided as soon as it is seen, from ``min_burst_ms`` on."""
    yield_ms: int = 240
    """Silence after which a leg counts as not talking at the moment (a pause inside a phrase is shorter)."""
    cutoff_ms: int = 400
    """The other leg silent this long, while the newcomer talks, has been cut off (a pause between two phrases of
    one turn is shorter)."""
    response_gap_ms: int = 400
    """The newcomer silent this long while the other talks on gave a listener response: what follows is a new
    start."""
    lead_in_ms: int = 300
    """How far before its segment's onset a newcomer's sound may have begun, for measuring the overlap."""
    bridge_ms: int = 300
    """Gaps up to this long inside the other leg's speech (stops, pauses between words: the segmenter's own
    hangover) count as talking for the overlap."""
    own_voice_below_db: float = 30.0
    """A frame counts as a leg's own voice only within this of that speaker's calm speech level (their escalation
    baseline; their loud-speech peak until it is known): on a quiet line, breaths, room noise and the other
    leg's bleed rise well above the line noise but not to the voice."""
    resume_pause_ms: int = 1200
    """The floor holder starting again within this of its own last speech is resuming its turn..."""
    listener_response_ms: int = 1000
    """...over a listener who began in that pause and has talked less than this: not an interruption."""
    min_voicing: float = 0.08
    """Share of the newcomer's frames of sound that must have a clear pitch (YIN, ``soft_voicing``). Measured
    on the generated and real calls, speech that took the floor scored 0.12-0.87; breathy laughter, coughs and
    noise score near 0 and do not take a turn. Voiced laughter passes here and is left to the words."""


@dataclass(frozen=True, slots=True)
class EscalationSettings:
    loudness_db: float
    """Rise of the window's median speech loudness over the baseline that counts as raised."""
    pitch_st: float
    """Rise of median pitch (semitones) that, together with ``loudness_with_pitch_db``, counts as raised."""
    loudness_with_pitch_db: float
    """The smaller loudness rise that suffices when pitch rose by ``pitch_st`` too."""
    level_quantile: float = 0.9
    """Which quantile of a stretch's frame levels is its loudness (baseline and windows alike)."""
    confirm_blocks: int = 2
    """Consecutive decisions (one per prosody block) that must agree: one loud clip is not an episode."""
    confirm_loud_blocks: bool = True
    """A confirming block with speech must not be calm itself (its own ``level_quantile`` at least half the
    lower bar over the baseline): the loudness is the window's loudest frames, and one loud phrase would
    otherwise carry the window through the calm speech after it."""
    strong_rise_db: float = 12.0
    """Two blocks of speech in a row this far over the baseline (each on its own), with the window raised, are an
    episode without waiting for a second raised decision: the window lags the first loud block (its loudness is a
    quantile of 2 s of speech), which costs half a second of a customer yelling. One loud block still is not.
    0: off."""
    window_speech_ms: int = 2000
    """Voiced speech the decision looks at: the most recent this-much of the leg's speech frames."""
    window_min_speech_ms: int = 1200
    """Least voiced speech in the window for a decision: a cut-off angry turn can be short."""
    spread_z: float = 4.0
    """The bar rises to this many robust standard deviations of the speaker's calm window-to-window loudness."""
    spread_windows: int = 240
    """How many of the speaker's most recent calm windows (one per block with speech, outside episodes, under
    ``loudness_with_pitch_db``) the spread is measured over, all call long: a voice's range shows over
    minutes, not its first 20 s.
    0: only the windows of the first baseline."""
    window_span_ms: int = 6000
    """...all of it within this much call time, so old speech cannot prop up a new decision."""
    baseline_speech_ms: int = 20000
    """Calm speech that makes a full baseline."""
    baseline_drift: float = 0.01
    """After that, each calm block moves the baseline this fraction of the way: it follows a line whose level
    changes over minutes, not a voice that rises over seconds."""
    baseline_min_speech_ms: int = 3000
    """Speech needed before any decision: a provisional baseline."""
    provisional_extra_db: float = 3.0
    """Until the baseline holds ``provisional_speech_ms`` of speech, a rise must clear the loudness bars by this
    much more: a few seconds of a speaker's first speech (a quiet greeting) say little about their voice, and an
    episode begun on such a baseline holds the baseline frozen."""
    provisional_speech_ms: int = 10000
    clear_ms: int = 5000
    """Speech below half the thresholds that ends an episode."""
    sustained_ms: int = 6000
    """An episode whose raised speech has spanned this long is sustained (``raised_voice_sustained``): it flags
    the call for a supervisor. One loud sentence is not."""
    clear_silence_ms: int = 20000
    """Silence on the leg that ends an episode too."""


CUSTOMER_ESCALATION = EscalationSettings(loudness_db=6.0, pitch_st=1.5, loudness_with_pitch_db=5.0)
AGENT_ESCALATION = EscalationSettings(loudness_db=6.0, pitch_st=1.5, loudness_with_pitch_db=5.0, sustained_ms=3000)
"""The agent's sustained bar is lower: an agent raising their voice at a customer is rare and always worth a
listen."""


@dataclass(frozen=True, slots=True)
class FloorSettings:
    dead_air_ms: int = 4000
    """Joint silence that counts as dead air (guidance: 4-5 s)."""
    sound_ms: int = 60
    """Sound this long (consecutive frames ``sound_gate_db`` over a leg's noise floor) restarts the silence."""
    sound_gate_db: float = 6.0
    plain_vad_mode: int = 2
    """During a joint silence, a webrtcvad of this mode on the raw line also restarts it (a murmur under the
    noise); three such frames in a row, as for ``sound_ms``."""
    plain_vad_after_ms: int = 600
    """...asked only this long after the last speech: webrtcvad's own smoothing runs on past a word's end."""
    monologue_ms: int = 60000
    """One leg holding the floor this long is a monologue."""
    floor_taking_ms: int = 1000
    """A segment of the other leg at least this long takes the floor; shorter ones are backchannels."""


@dataclass(frozen=True, slots=True)
class PitchSettings:
    fmin_hz: float = 60.0
    fmax_hz: float = 400.0
    window_ms: int = 32
    voicing_threshold: float = 0.25
    """YIN aperiodicity below which a frame counts as voiced."""
    octave_ratio: float = 0.6
    """Take twice the lag found when its aperiodicity is below this fraction of the first dip's (octave fix)."""


@dataclass(frozen=True, slots=True)
class ProsodySettings:
    """Which frames a leg's loudness and pitch (the raised-voice baseline and windows) are measured on.

    The segmenter's speech decision is strict (webrtcvad mode 3, ``snr_gate_db``, an onset run): right for
    turn-taking, but on a phone line a calm voice a few dB above the line noise reaches it in only 5-15 % of
    its frames, so the speaker's calm baseline is never learnt. Loudness and pitch need only frames that are
    clearly *voice*: periodic and above the noise.
    """

    gate_db: float = 3.0
    """A frame outside a speech segment still counts for prosody this far above the leg's noise floor..."""
    below_peak_db: float = 25.0
    """...and no further than this below the leg's loud-speech peak (the VAD gain's tracker): on a quiet line a
    real recording's own room noise and breaths sit far above the line noise but are not the voice."""
    aperiodicity: float = 1.0
    """...when its YIN aperiodicity is under this (clearly periodic: line noise never is). Only frames past
    ``gate_db`` are pitch-tracked, so the cost follows the speech, not the call."""
    noise_compensated: bool = True
    """Measure a frame's loudness with the noise floor's power subtracted: near the noise a calm voice reads
    louder than it is, which shrinks every rise over it."""


@dataclass(frozen=True, slots=True)
class AnalyzerSettings:
    vad: VadSettings = field(default_factory=VadSettings)
    interruption: InterruptionSettings = field(default_factory=InterruptionSettings)
    customer_escalation: EscalationSettings = CUSTOMER_ESCALATION
    agent_escalation: EscalationSettings = AGENT_ESCALATION
    floor: FloorSettings = field(default_factory=FloorSettings)
    pitch: PitchSettings = field(default_factory=PitchSettings)
    prosody: ProsodySettings = field(default_factory=ProsodySettings)
    prosody_block_ms: int = 500
    """How often loudness/pitch are summarised (and pitch computed, batched over the block)."""
