"""How strongly the agent's voice leaks into the customer leg (line echo), learnt per call."""

from __future__ import annotations

from collections import deque

import numpy as np


class EchoGate:
    """Estimates the echo return loss (agent level minus what shows up on the customer leg while only the
    agent talks) and calls a customer frame echo when it sits no higher than that echo would.

    A fixed margin either passes real echo (strong coupling) or mutes a soft customer talking over a loud
    agent (no coupling at all); learning the loss per call does neither.
    """

    def __init__(self, default_margin_db: float, headroom_db: float, min_margin_db: float, max_margin_db: float,
                 min_frames: int = 100, history: int = 1500) -> None:
        self.margin_db = default_margin_db
        self.headroom_db = headroom_db
        self.min_margin_db, self.max_margin_db = min_margin_db, max_margin_db
        self.min_frames = min_frames
        self._loss: deque[float] = deque(maxlen=history)

    def observe(self, loss_db: float) -> None:
        """Agent voiced, customer not talking: ``loss_db`` = agent's recent peak level - customer level."""
        self._loss.append(loss_db)

    def update(self) -> None:
        if len(self._loss) >= self.min_frames:
            # A low percentile: the echo is the loudest the leak gets, quieter frames are the floor.
            loss = float(np.percentile(np.fromiter(self._loss, float, len(self._loss)), 20))
            self.margin_db = min(max(loss - self.headroom_db, self.min_margin_db), self.max_margin_db)

    def is_echo(self, loss_db: float) -> bool:
        return loss_db >= self.margin_db
