"""Do words cross between packed utterances, and between calls? Counted against each utterance transcribed alone.

    python -m benchmarks.leakage --manifest ../shared/data/asr/manifest.tsv --data-root ../shared/data/asr
                                 [--isolation call,shared/time] [--orders 3] [--shapes 32,window] [--calls 8]

Every utterance of the manifest is first transcribed alone (a window of its own: nothing else to hear). Then,
for each packing order (the manifest's, then seeded shuffles) and each batch shape the live scheduler hands
the transcriber (``32``: what one replica takes from a backlog, its ``max_batch``, every call's; ``window``:
what each of several side-by-side replicas takes, one 30 s window's worth; any number: that many utterances;
with ``call`` isolation a batch holds the oldest calls only, one with ``window``, as many as the transcriber's
``batch_windows`` otherwise, as ``service.live.transcription`` does with ``per_call``), the utterances are given,
in that order, to ``N`` pretend calls in turn (utterance k to call k mod N) and transcribed in batches of
that shape, exactly as ``transcribe_batch`` is called live. Each isolation is a variant as in
``benchmarks.asr`` (``ISOLATION[/OWNERSHIP][@GAP_S]``). Every window decoded is checked: how many held
utterances of more than one call (0 by construction with ``call``).

A word of an utterance's packed transcript is *foreign* when neither its reference nor its transcript alone
holds it (words compared after the normaliser of ``benchmarks.asr``, as multisets). A foreign word that
another utterance of the same batch said (in its reference or alone) is counted as attributed to the wrong
utterance; when only utterances of other calls said it, to the wrong call. The "wrong call" count is the
privacy figure: it must be 0 in every run. A word that both a neighbour said and the model might invent
("the", "a") counts too, so the counts are an upper bound; words of four letters or more are also counted
apart, as the live test does. ``shared`` (one text per window, split by word time,
windows of every call) is what the transcriber did before issue 13; it is here to show that the count sees
leaks. With ``call`` isolation (the default) a wrong-call word is impossible by construction (no window holds
two calls): a count above 0 there could only be the model inventing a word another call happened to say.

Also printed per run: words of the transcript alone that the packed transcript lost, and the WER of both
against the references. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
import numpy.typing as npt

from benchmarks.asr import Item, load_items, normalise, variant, wer_by_language
from models.packing import Window
from models.transcriber import Utterance
from models.whisper import DecodeSettings, Isolation, WhisperTranscriber, _Decoded, load_model


def utterances(items: Sequence[Item], calls: int) -> list[Utterance]:
    return [
        Utterance(f"call-{k % calls}", ("customer", "agent")[(k // calls) % 2], 0.0, len(it.audio) / 16000,
                  it.audio, 16000, it.language)
        for k, it in enumerate(items)
    ]


def batches(utts: Sequence[Utterance], shape: str, window_s: float, gap_s: float, per_call: int = 0
            ) -> list[list[int]]:
    """Indices of ``utts`` in the batches the live scheduler would make of them, all queued at once in this order
    (``TranscriptionScheduler._take_batch``): ``window``, side-by-side workers, one window's worth each; a
    number, a lone worker taking up to that many. ``per_call`` (call isolation): a batch holds at most that many
    calls (one with ``window``), the other calls' utterances keeping their places."""
    out: list[list[int]] = []
    queue = list(range(len(utts)))
    limit = len(utts) if shape == "window" else int(shape)
    wanted = (1 if shape == "window" else per_call) if per_call else 0
    while queue:
        room = window_s if shape == "window" else math.inf
        batch: list[int] = []
        calls: set[str] = set()
        rest: list[int] = []
        for position, k in enumerate(queue):
            if len(batch) >= limit:
                rest.extend(queue[position:])
                break
            if wanted and utts[k].call_id not in calls and len(calls) >= wanted:
                rest.append(k)
                continue
            packed = utts[k].end_s - utts[k].start_s + gap_s
            if batch and room < packed:
                rest.extend(queue[position:])
                break
            batch.append(k)
            calls.add(utts[k].call_id)
            room -= packed
        out.append(batch)
        queue = rest
    return out


def words(text: str, language: str) -> Counter[str]:
    return Counter(normalise(text, language).split())


def count(items: Sequence[Item], utts: Sequence[Utterance], groups: Sequence[Sequence[int]],
          alone: Sequence[str], packed: Sequence[str]) -> dict[str, Any]:
    wrong_utterance = wrong_call = wrong_call_long = lost = 0
    examples: list[str] = []
    said = [words(it.reference, it.language) + words(a, it.language) for it, a in zip(items, alone, strict=True)]
    for group in groups:
        for k in group:
            mine = words(packed[k], items[k].language)
            lost += sum((words(alone[k], items[k].language) - mine).values())
            foreign = mine - said[k]
            same = Counter[str]()
            other = Counter[str]()
            for j in group:
                if j != k:
                    (same if utts[j].call_id == utts[k].call_id else other).update(said[j])
            for word, n in foreign.items():
                if word in same or word in other:
                    wrong_utterance += n
                if word in other and word not in same:
                    wrong_call += n
                    wrong_call_long += n if len(word) >= 4 else 0
                    examples.append(f"{word!r} in {utts[k].call_id} {items[k].path}")
    return {"wrong_utterance": wrong_utterance, "wrong_call": wrong_call, "wrong_call_long": wrong_call_long,
            "lost_words": lost,
            "wrong_call_examples": examples[:10]}


class Watched(WhisperTranscriber):
    """Counts the windows it decodes, and those that held utterances of more than one call."""

    calls: list[str]
    windows = 0
    mixed = 0

    def _decode(self, batch: Sequence[tuple[str | None, Window]], audio: Sequence[npt.NDArray[np.float32]]
                ) -> list[_Decoded]:
        for _, window in batch:
            self.windows += 1
            self.mixed += len({self.calls[p.index] for p in window.pieces}) > 1
        return super()._decode(batch, audio)


def transcribe(transcriber: WhisperTranscriber, utts: Sequence[Utterance], groups: Sequence[Sequence[int]]
               ) -> tuple[list[str], float]:
    texts = [""] * len(utts)
    began = time.process_time()
    for group in groups:
        if isinstance(transcriber, Watched):
            transcriber.calls = [utts[k].call_id for k in group]
        for k, result in zip(group, transcriber.transcribe_batch([utts[k] for k in group]), strict=True):
            texts[k] = result.text
    return texts, time.process_time() - began


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="first N utterances of each language")
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--isolation", default=DecodeSettings().isolation,
                        help="comma-separated variants ISOLATION[/OWNERSHIP][@GAP_S], isolation one of "
                        + ", ".join(get_args(Isolation)))
    parser.add_argument("--orders", type=int, default=3, help="the manifest's order, then seeded shuffles")
    parser.add_argument("--shapes", default="32,window", help="batch shapes: 32, window or a number")
    parser.add_argument("--calls", type=int, default=8)
    args = parser.parse_args(argv)

    items = load_items(args.manifest, args.data_root, args.limit)
    print(f"{len(items)} utterances, {sum(len(i.audio) for i in items) / 16000:.0f} s of audio", file=sys.stderr)
    model = load_model(args.model, threads=args.threads)
    defaults = DecodeSettings()
    # Alone: every utterance its own call, so "call" isolation gives each a window of its own.
    solo = WhisperTranscriber(model, settings=DecodeSettings(isolation="call", fit_s=0.0))
    alone_utts = [Utterance(f"alone-{k}", "customer", 0.0, len(it.audio) / 16000, it.audio, 16000, it.language)
                  for k, it in enumerate(items)]
    alone, alone_cpu = transcribe(solo, alone_utts, [list(range(f, min(f + 32, len(items))))
                                                      for f in range(0, len(items), 32)])
    print(f"alone: WER {wer_by_language(items, alone)}  ({alone_cpu:.0f} s CPU)", flush=True)
    runs: list[dict[str, Any]] = []
    for isolation in args.isolation.split(","):
        settings = variant(isolation, defaults)
        transcriber = Watched(model, settings=settings)
        for order in range(args.orders):
            index = list(range(len(items)))
            if order:
                random.Random(order).shuffle(index)
            ordered = [items[k] for k in index]
            for shape in args.shapes.split(","):
                utts = utterances(ordered, args.calls)
                per_call = settings.batch_windows if settings.isolation == "call" else 0
                groups = batches(utts, shape, settings.window_s, settings.gap_s, per_call)
                windows, mixed = transcriber.windows, transcriber.mixed
                texts, cpu = transcribe(transcriber, utts, groups)
                windows, mixed = transcriber.windows - windows, transcriber.mixed - mixed
                result = count(ordered, utts, groups, [alone[k] for k in index], texts)
                run = {"isolation": isolation, "order": "manifest" if not order else f"shuffle-{order}",
                       "shape": shape, "batches": len(groups), "windows": windows, "mixed_windows": mixed, **result,
                       "wer": wer_by_language(ordered, texts), "cpu_s": round(cpu, 1)}
                runs.append(run)
                print(f"{isolation:9s} {run['order']:9s} batch {shape:>6s}: {windows} windows, {mixed} of them "
                      f"holding two calls or more; wrong call {result['wrong_call']:3d} "
                      f"({result['wrong_call_long']} of 4+ letters)  "
                      f"wrong utterance {result['wrong_utterance']:3d}  lost {result['lost_words']:3d}  "
                      f"WER {run['wer']}  {cpu:.0f} s CPU", flush=True)
                for example in result["wrong_call_examples"]:
                    print(f"    {example}", flush=True)
    print(json.dumps({"utterances": len(items), "calls": args.calls, "alone_wer": wer_by_language(items, alone),
                      "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
