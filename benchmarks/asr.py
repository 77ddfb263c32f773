"""Stock faster-whisper against callwatch's packed, batched transcriber (one or more variants), on one manifest.

Both systems use the same loaded model (so the same weights, compute type and thread count) and the
same audio: every file is read, mixed to mono and resampled to 16 kHz with soxr before any timing.
Telephone recordings (8 kHz) are therefore fed as the line delivers them, only upsampled.

The systems alternate over slices of the manifest (``--slices``), so load from other processes
on a shared machine falls on all alike; utterances/second is over the summed wall-clock time.

stock: ``WhisperModel.transcribe(audio, language=<manifest language>)`` one utterance at a time, with
       the library defaults (beam 5, temperature fallback, conditioning on previous text).
ours:  ``WhisperTranscriber.transcribe_batch`` on consecutive groups of ``--batch`` utterances, the
       way the live scheduler hands it whatever is waiting (greedy, packed 30 s windows, no fallback).
       The utterances belong to ``--calls`` calls in turn (utterance k to call k mod N; 0: each its own
       call), which is what ``call`` isolation packs by: with N calls a batch of 32 makes about N windows.
       ``--ours`` names the variants to run side by side, each ``ISOLATION[/OWNERSHIP][@GAP_S][~FIT_S[:MIN_S]][#BEAM]``:
       ``shared/time`` is the transcriber before issue 13, ``call`` today's default.

WER is corpus-level (total edits / total reference words) after one normaliser for both: annotations
in () or [] dropped, lowercase, ё→е, punctuation removed, whole numbers 0-999 spelled out in the
utterance's language. Utterances whose reference is empty (recorded silence) add the hypothesis words
as insertions. Edge errors count the edits at the first and last word of each utterance (``boundary_errors``).
The last line printed is one JSON object.

    python -m benchmarks.asr --manifest ../shared/data/asr/manifest.tsv --data-root ../shared/data/asr \
        [--ours shared/time,call] [--calls 10]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast, get_args

import jiwer
import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from models.transcriber import Utterance
from models.whisper import DecodeSettings, Isolation, Ownership, WhisperTranscriber, load_model


@dataclass(frozen=True, slots=True)
class Item:
    path: str
    language: str
    reference: str
    audio: npt.NDArray[np.float32]


_EN_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen \
sixteen seventeen eighteen nineteen".split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_RU_ONES = "ноль один два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать \
тринадцать четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать".split()
_RU_TENS = "_ _ двадцать тридцать сорок пятьдесят шестьдесят семьдесят восемьдесят девяносто".split()
_RU_HUNDREDS = "_ сто двести триста четыреста пятьсот шестьсот семьсот восемьсот девятьсот".split()


def number_words(n: int, language: str) -> str:
    if language == "ru":
        ones, tens = _RU_ONES, _RU_TENS
        head = _RU_HUNDREDS[n // 100] + " " if n >= 100 else ""
    else:
        ones, tens = _EN_ONES, _EN_TENS
        head = f"{ones[n // 100]} hundred " if n >= 100 else ""
    rest = n % 100
    if n >= 100 and rest == 0:
        return head.strip()
    if rest < 20:
        return head + ones[rest]
    return head + tens[rest // 10] + ("" if rest % 10 == 0 else " " + ones[rest % 10])


def normalise(text: str, language: str) -> str:
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text).lower().replace("ё", "е")
    text = re.sub(r"\d+", lambda m: _spell(m.group(), language), text)
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(text.split())


def _spell(digits: str, language: str) -> str:
    n = int(digits)
    if n < 1000:
        return f" {number_words(n, language)} "
    return " " + " ".join(number_words(int(d), language) for d in digits) + " "


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return len(hyp), 0
    if not hyp:
        return len(ref), len(ref)
    out = jiwer.process_words(reference, hypothesis)
    return out.substitutions + out.deletions + out.insertions, len(ref)


def boundary_errors(reference: str, hypothesis: str) -> int:
    """Edits at an utterance's edges: a first or last reference word lost or changed, words added before the
    first or after the last. Where packed utterances lose or gain words to their neighbours, this is where."""
    ref, hyp = reference.split(), hypothesis.split()
    if not ref or not hyp:
        return len(hyp) if not ref else min(2, len(ref))
    errors = 0
    for chunk in jiwer.process_words(reference, hypothesis).alignments[0]:
        if chunk.type == "insert" and chunk.ref_start_idx in (0, len(ref)):
            errors += chunk.hyp_end_idx - chunk.hyp_start_idx
        elif chunk.type in ("delete", "substitute"):
            errors += (chunk.ref_start_idx == 0) + (chunk.ref_end_idx == len(ref) and len(ref) > 1)
    return errors


def boundary_by_language(items: Sequence[Item], texts: Sequence[str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item, text in zip(items, texts, strict=True):
        ref, hyp = normalise(item.reference, item.language), normalise(text, item.language)
        totals[item.language] = totals.get(item.language, 0) + boundary_errors(ref, hyp)
    return dict(sorted(totals.items()))


def wer_by_language(items: Sequence[Item], texts: Sequence[str]) -> dict[str, float]:
    totals: dict[str, list[int]] = {}
    for item, text in zip(items, texts, strict=True):
        errors, words = word_errors(normalise(item.reference, item.language), normalise(text, item.language))
        acc = totals.setdefault(item.language, [0, 0])
        acc[0] += errors
        acc[1] += words
    return {lang: round(e / max(1, n), 4) for lang, (e, n) in sorted(totals.items())}


def load_items(manifest: Path, data_root: Path, limit: int | None) -> list[Item]:
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if limit is not None:
        # Take the first N of each language, so a short run still measures both.
        seen: dict[str, int] = {}
        kept = []
        for row in rows:
            seen[row["language"]] = seen.get(row["language"], 0) + 1
            if seen[row["language"]] <= limit:
                kept.append(row)
        rows = kept
    items = []
    for row in rows:
        data, rate = soundfile.read(data_root / row["path"], dtype="float32", always_2d=True)
        mono = data.mean(axis=1).astype(np.float32)
        if rate != 16000:
            mono = np.asarray(soxr.resample(mono, rate, 16000, quality="HQ"), dtype=np.float32)
        items.append(Item(row["path"], row["language"], row["text"], mono))
    return items


def run_stock(model: object, items: Sequence[Item], beam_size: int) -> tuple[list[str], float]:
    texts = []
    began = time.perf_counter()
    for item in items:
        segments, _ = model.transcribe(item.audio, language=item.language, beam_size=beam_size)  # type: ignore[attr-defined]
        texts.append("".join(s.text for s in segments).strip())
    return texts, time.perf_counter() - began


def variant(spec: str, base: DecodeSettings) -> DecodeSettings:
    """``ISOLATION[/OWNERSHIP][@GAP_S][~FIT_S[:MIN_S]][#BEAM]`` on top of ``base`` (``fit_s``, ``min_fit_s``,
    ``beam_size``)."""
    spec, _, beam = spec.partition("#")
    spec, _, fitting = spec.partition("~")
    fit, _, least = fitting.partition(":")
    head, _, gap = spec.partition("@")
    isolation, _, ownership = head.partition("/")
    if isolation not in get_args(Isolation) or (ownership and ownership not in get_args(Ownership)):
        raise SystemExit(f"unknown variant {spec!r}: isolation {get_args(Isolation)}, ownership {get_args(Ownership)}")
    return replace(base, isolation=cast(Isolation, isolation),
                   ownership=cast(Ownership, ownership or base.ownership), gap_s=float(gap) if gap else base.gap_s,
                   fit_s=float(fit) if fit else base.fit_s, min_fit_s=float(least) if least else base.min_fit_s,
                   beam_size=int(beam) if beam else base.beam_size)


def run_ours(transcriber: WhisperTranscriber, items: Sequence[Item], batch: int, calls: int = 0,
             first_index: int = 0) -> tuple[list[str], float]:
    """``calls``: utterance k belongs to call k mod ``calls`` (k counted over the whole manifest from
    ``first_index``); 0: each utterance to a call of its own."""
    utterances = [
        Utterance(f"bench-{(first_index + i) % calls if calls else first_index + i}", "customer", 0.0,
                  len(it.audio) / 16000, it.audio, 16000, it.language)
        for i, it in enumerate(items)
    ]
    texts: list[str] = []
    began = time.perf_counter()
    for first in range(0, len(utterances), batch):
        texts.extend(t.text for t in transcriber.transcribe_batch(utterances[first : first + batch]))
    return texts, time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--hyp-out", type=Path)
    parser.add_argument("--limit", type=int, help="first N utterances of each language")
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--stock-beam", type=int, default=5, help="beam for stock (library default 5)")
    parser.add_argument("--batch", type=int, default=32, help="utterances per transcribe_batch call")
    parser.add_argument("--batch-windows", type=int, default=DecodeSettings().batch_windows)
    parser.add_argument("--gap", type=float, default=DecodeSettings().gap_s)
    parser.add_argument("--timestamps", action="store_true", help="decode ours with timestamp tokens")
    parser.add_argument("--ours", default=DecodeSettings().isolation,
                        help="variants ISOLATION[/OWNERSHIP][@GAP_S][~FIT_S[:MIN_S]][#BEAM], comma-separated: "
                             "shared/time,call~10#2")
    parser.add_argument("--calls", type=int, default=10,
                        help="utterance k belongs to call k mod N (0: each its own call)")
    parser.add_argument("--margin", type=float, default=DecodeSettings().margin_s)
    parser.add_argument("--tail", type=float, default=DecodeSettings().tail_s)
    parser.add_argument("--slices", type=int, default=6, help="alternate stock/ours over this many slices")
    parser.add_argument("--skip-stock", action="store_true", help="while tuning: only run ours")
    args = parser.parse_args(argv)

    items = load_items(args.manifest, args.data_root, args.limit)
    print(f"{len(items)} utterances, {sum(len(i.audio) for i in items) / 16000:.0f} s of audio", file=sys.stderr)
    model = load_model(args.model, threads=args.threads, compute_type=args.compute_type)
    base = DecodeSettings(batch_windows=args.batch_windows, gap_s=args.gap, timestamps=args.timestamps,
                          margin_s=args.margin, tail_s=args.tail)
    ours = {spec: WhisperTranscriber(model, settings=variant(spec, base)) for spec in args.ours.split(",")}
    warm = items[:1]
    for transcriber in ours.values():
        run_ours(transcriber, warm, 1)
    systems: dict[str, tuple[list[str], float]] = {}
    cpu: dict[str, float] = {}
    if not args.skip_stock:
        run_stock(model, warm, args.stock_beam)
    # The machine is shared: alternate the two systems over slices of the manifest, so a burst of
    # someone else's load hits both alike. Slices are whole multiples of --batch, so ours sees the
    # same batches as in one pass.
    step = args.batch * max(1, -(-len(items) // (args.batch * max(1, args.slices))))
    for first in range(0, len(items), step):
        part = items[first : first + step]
        for name in ([] if args.skip_stock else ["stock"]) + list(ours):
            began = time.process_time()
            if name == "stock":
                texts, seconds = run_stock(model, part, args.stock_beam)
            else:
                texts, seconds = run_ours(ours[name], part, args.batch, args.calls, first)
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - began
            done, total = systems.get(name, ([], 0.0))
            systems[name] = (done + texts, total + seconds)

    report: dict[str, object] = {"utterances": len(items), "model": args.model, "threads": args.threads,
                                 "calls": args.calls, "batch": args.batch}
    wer: dict[str, dict[str, float]] = {}
    speed: dict[str, float] = {}
    edges: dict[str, dict[str, int]] = {}
    for name, (texts, seconds) in systems.items():
        wer[name] = wer_by_language(items, texts)
        speed[name] = round(len(items) / seconds, 3)
        edges[name] = boundary_by_language(items, texts)
        per_lang = "  ".join(f"WER[{k}]={v:.4f}" for k, v in wer[name].items())
        print(f"{name:12s} {per_lang}  edge errors {edges[name]}  {speed[name]:.2f} utt/s  "
              f"({seconds:.1f} s wall, {cpu[name]:.1f} s CPU)")
    if "stock" in speed:
        # Wall-clock ratio is the figure of merit; the CPU-time ratio is less disturbed by other
        # processes sharing the machine, so it is reported alongside.
        report["ratio"] = {name: round(speed[name] / speed["stock"], 3) for name in ours}
        report["cpu_ratio"] = {name: round(cpu["stock"] / cpu[name], 3) for name in ours}
    report["cpu_s"] = {k: round(v, 2) for k, v in cpu.items()}
    report["wer"] = wer
    report["edge_errors"] = edges
    report["utt_per_s"] = speed
    if args.hyp_out:
        with args.hyp_out.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["path", "system", "text"])
            for name, (texts, _) in systems.items():
                for item, text in zip(items, texts, strict=True):
                    writer.writerow([item.path, name, text])
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
