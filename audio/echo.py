"""How strongly one leg's voice leaks into the other leg, learnt per call.

Two leaks matter: line echo (the agent's voice returned on the customer leg by a hybrid or a far-end phone)
and crosstalk (the customer's voice, played into the agent's headset, picked up again by its microphone;
recordings of both channels of a telephone conversation carry it too). Either makes the other voice look
like the leg's own speech, talking over the speaker whenever they talk.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray


class LeakGate:
    """Estimates the leak's loss (the source leg's recent level minus what shows up on this leg while the
    source talks) and calls a frame of this leg leak when it sits no higher than that leak would.

    A fixed margin either passes a strong leak or mutes a soft speaker talking over a loud one (no leak at
    all); learning the loss per call does neither. It is learnt two ways:

    - A systematic leak: over at least ``leak_min_frames`` of the source's loud voiced frames (1 s), this leg
      is heard too, never louder than the source, in at least ``leak_share`` of them, at a steady loss (the
      middle half within ``leak_spread_db``, at least ``leak_min_loss_db``). The loss is taken between both
      legs' peaks over the leak window, which a leak follows and a syllable does not. A person does not talk
      over another's words at one fixed level below them; a leak does. Then the margin is that loss less
      ``headroom_db``, down to ``leak_min_margin_db``. Learnt from every such frame, so a leak strong enough to
      open a speech segment of its own before it is learnt is still learnt.
    - With ``alone``, from the frames where this leg is heard while only the source talks (this leg in no
      speech segment): a low percentile of their loss, less ``headroom_db``, down to ``min_margin_db``.

    Where both have a margin, the stricter holds: each may see a leak the other cannot.

    A gate that should stay open until a leak shows starts with an infinite ``default_margin_db`` and without
    ``alone``.
    """

    def __init__(self, default_margin_db: float, headroom_db: float, min_margin_db: float, max_margin_db: float,
                 min_frames: int = 100, history: int = 1500, leak_share: float = 0.3,
                 leak_spread_db: float = 8.0, leak_min_loss_db: float = 9.0, leak_min_margin_db: float = 6.0,
                 leak_min_frames: int = 50, alone: bool = True) -> None:
        self.margin_db = self.default_margin_db = default_margin_db
        self.headroom_db = headroom_db
        self.min_margin_db, self.max_margin_db = min_margin_db, max_margin_db
        self.min_frames = min_frames
        self.leak_share, self.leak_spread_db, self.leak_min_loss_db = leak_share, leak_spread_db, leak_min_loss_db
        self.leak_min_margin_db, self.leak_min_frames = leak_min_margin_db, leak_min_frames
        self.alone = alone
        self.systematic = False
        """Whether the margin now comes from a systematic leak."""
        self.confirmed = False
        """Whether the systematic leak was checked against the source's pitch and follows it."""
        self._loss: deque[float] = deque(maxlen=history)
        self._heard: deque[bool] = deque(maxlen=history)
        self._heard_loss: deque[float] = deque(maxlen=history)
        self._heard_at: deque[int] = deque(maxlen=history)

    def learn(self, loud: bool, peak_loss_db: float, heard: bool, talking: bool, loss_db: float,
              frame: int = -1) -> None:
        """A frame (index ``frame``) in which the source is voiced: ``loud`` (near its loud-speech peak: where a
        leak shows over the line noise), the loss between both legs' peaks over the leak window, whether this leg
        was ``heard`` and is ``talking`` (in a speech segment), and this frame's loss."""
        if loud:
            self.observe_source(peak_loss_db, heard, frame)
        if heard and not talking:
            self.observe(loss_db)

    def observe(self, loss_db: float) -> None:
        """Source voiced, this leg heard and not talking: ``loss_db`` = source's recent peak level - this leg's."""
        self._loss.append(loss_db)

    def observe_source(self, loss_db: float, heard: bool, frame: int = -1) -> None:
        """Every frame in which the source is voiced: whether this leg was heard too, and the loss."""
        # A frame louder here than the source's recent peak is this leg's own voice (or the source carrying
        # it, the other leak, while the other gate is still learning): no evidence of a leak into this leg.
        heard = heard and loss_db > 0.0
        self._heard.append(heard)
        if heard:
            self._heard_loss.append(loss_db)
            self._heard_at.append(frame)

    def heard_share(self) -> float:
        """Of the source's recent loud frames, the share in which this leg was heard too."""
        return len(self._heard_loss) / len(self._heard) if self._heard else 0.0

    def evidence(self, n: int) -> list[int]:
        """The frames (indices) of the last ``n`` times this leg was heard while the source was loud."""
        return [i for i in list(self._heard_at)[-n:] if i >= 0]

    def reject(self) -> None:
        """What looked like a systematic leak does not follow its source (a person talking over it at a steady
        level): forget that evidence, and the margin it gave."""
        self._heard.clear()
        self._heard_loss.clear()
        self._heard_at.clear()
        self.update()

    def update(self) -> None:
        margins = []
        heard = len(self._heard_loss)
        was = self.systematic
        self.systematic = False
        if len(self._heard) >= self.leak_min_frames and heard >= self.leak_share * len(self._heard):
            q1, mid, q3 = np.percentile(np.fromiter(self._heard_loss, float, heard), (25, 50, 75))
            if q3 - q1 <= self.leak_spread_db and mid >= self.leak_min_loss_db:
                self.systematic = True
                margins.append(min(max(float(mid) - self.headroom_db, self.leak_min_margin_db), self.max_margin_db))
        if self.alone and len(self._loss) >= self.min_frames:
            # A low percentile: the echo is the loudest the leak gets, quieter frames are the floor.
            loss = float(np.percentile(np.fromiter(self._loss, float, len(self._loss)), 20))
            margins.append(min(max(loss - self.headroom_db, self.min_margin_db), self.max_margin_db))
        # Either way of learning may see the leak where the other cannot: the stricter gate holds. Neither (a
        # steady leak no longer seen, nothing heard alone yet): back to the default, not a stale leak's margin.
        self.margin_db = min(margins) if margins else self.default_margin_db
        if not (was and self.systematic):
            self.confirmed = False

    def is_echo(self, loss_db: float) -> bool:
        return loss_db >= self.margin_db


def leak_delay(source_db: NDArray[np.float32], leg_db: NDArray[np.float32], max_lag: int,
               active_db: float = 15.0, min_frames: int = 100, min_corr: float = 0.45,
               min_lead: float = 0.3) -> int | None:
    """How many frames late ``source``'s voice shows up on this leg, from both legs' recent frame levels (dB,
    aligned, the same length), or None when no lag stands out.

    A leak follows its source's loudness contour, syllable by syllable, at one delay: over the frames where the
    source is active (``active_db`` over its 20th percentile), this leg's level correlates with the source's
    that many frames earlier, and with no other lag. The leg's own speech does not follow the source at all.
    A lag counts when its correlation reaches ``min_corr`` and leads the median lag's by ``min_lead``.
    """
    n = len(leg_db) - max_lag
    if n < min_frames:
        return None
    # Column ``lag`` holds the source ``lag`` frames before each of this leg's last ``n`` frames.
    windows = np.lib.stride_tricks.sliding_window_view(source_db.astype(np.float64), n)
    src = windows[max_lag::-1][: max_lag + 1].T  # (n, lags): lag 0 is the source's last n frames
    dst = leg_db[max_lag:].astype(np.float64)[:, None]
    mask = src > np.percentile(source_db, 20) + active_db
    count = mask.sum(axis=0)
    ok = count >= min_frames
    if not ok.any():
        return None
    w = mask.astype(np.float64)
    c = np.maximum(count, 1)
    mx, my = (src * w).sum(axis=0) / c, (dst * w).sum(axis=0) / c
    cov = ((src - mx) * (dst - my) * w).sum(axis=0)
    var = ((src - mx) ** 2 * w).sum(axis=0) * ((dst - my) ** 2 * w).sum(axis=0)
    corr = np.where(ok & (var > 0), cov / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
    best = int(np.argmax(corr))
    if corr[best] >= min_corr and corr[best] - float(np.median(corr)) >= min_lead:
        return best
    return None
