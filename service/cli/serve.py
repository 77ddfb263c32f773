"""``callwatch serve``: the live service under uvicorn."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import uvicorn

from service.core import logsafe
from service.core.auth import ensure_secret
from service.core.settings import Settings, SettingsError, load
from service.web import limits as conn_limits
from service.web.app import create_app


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Defaults are None so that CALLWATCH_* variables apply unless a flag is given.
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; CALLWATCH_HOST)")
    p.add_argument("--port", type=int, help="port (default 8080; CALLWATCH_PORT)")
    p.add_argument("--db", dest="db_url", metavar="URL", help="database URL, sqlite:///PATH or postgresql://... "
                   "(default sqlite file in the data dir; CALLWATCH_DB)")
    p.add_argument("--redis", dest="redis_url", metavar="URL",
                   help="redis://HOST:PORT/DB: share live events and listen-in audio between workers "
                   "(CALLWATCH_REDIS)")
    p.add_argument("--worker-id", dest="worker_id", metavar="ID",
                   help="this worker's name in the shared database (default hostname-pid; CALLWATCH_WORKER_ID)")
    p.add_argument("--model", help="Whisper model name or path (CALLWATCH_MODEL)")
    p.add_argument("--language", help="en, ru or auto (CALLWATCH_LANGUAGE)")
    p.add_argument("--no-asr", dest="no_asr", action="store_const", const=True, default=None,
                   help="signals only: no transcription, no phrase alerts")
    p.add_argument("--asr-device", dest="asr_device", choices=("cpu", "cuda", "auto"),
                   help="where Whisper runs (default cpu; CALLWATCH_ASR_DEVICE)")
    p.add_argument("--asr-compute-type", dest="asr_compute_type", metavar="TYPE",
                   help="CTranslate2 compute type: int8, float16, int8_float16, ... "
                   "(default int8 on cpu, float16 on cuda; CALLWATCH_ASR_COMPUTE_TYPE)")
    p.add_argument("--asr-batch-windows", dest="asr_batch_windows", type=int, metavar="N",
                   help="30 s windows of packed utterances per Whisper call (default 4; a GPU takes 16+; "
                   "CALLWATCH_ASR_BATCH_WINDOWS)")
    p.add_argument("--asr-fit", dest="asr_fit_s", type=float, metavar="S",
                   help="encode Whisper windows over their speech plus S seconds of silence, not always 30 s "
                   "(default 3; 0 = whole windows; CALLWATCH_ASR_FIT_S)")
    p.add_argument("--asr-workers", dest="asr_workers", type=int, metavar="N",
                   help="Whisper batches run side by side (default 1; CALLWATCH_ASR_WORKERS), "
                   "each with --asr-threads threads")
    p.add_argument("--asr-threads", dest="asr_threads", type=int, metavar="N",
                   help="CPU threads of each Whisper replica (default 2; CALLWATCH_ASR_THREADS); "
                   "under a heavy load on two cores, --asr-workers 2 --asr-threads 1")
    p.add_argument("--data-dir", type=Path, help="where the database, secret and recordings live "
                   "(default ./var; CALLWATCH_DATA_DIR)")
    p.add_argument("--recording", choices=("flagged", "all", "none"),
                   help="which calls' audio to keep (default flagged; CALLWATCH_RECORDING)")
    p.add_argument("--max-audio-speed", dest="max_audio_speed", type=float, metavar="X",
                   help="how much faster than real time a call may send audio, beyond a burst allowance "
                   "(default 2; 0 = no limit; CALLWATCH_MAX_AUDIO_SPEED)")
    p.add_argument("--max-connections", dest="max_connections", type=int, metavar="N",
                   help="open connections in all (default 2000; 0 = no limit; CALLWATCH_MAX_CONNECTIONS)")
    p.add_argument("--max-connections-per-address", dest="max_connections_per_address", type=int, metavar="N",
                   help="open connections from one client address (default 256; 0 = no limit; "
                   "CALLWATCH_MAX_CONNECTIONS_PER_ADDRESS)")
    p.add_argument("--header-timeout", dest="header_timeout_s", type=float, metavar="S",
                   help="seconds a client has to send its request head (default 10; CALLWATCH_HEADER_TIMEOUT_S)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """The environment's settings, with the flags given on the command line over them."""
    return load(env, host=args.host, port=args.port, db_url=args.db_url, redis_url=args.redis_url,
                model=args.model, language=args.language, no_asr=args.no_asr, data_dir=args.data_dir,
                recording=args.recording, worker_id=args.worker_id, asr_device=args.asr_device,
                asr_compute_type=args.asr_compute_type, asr_batch_windows=args.asr_batch_windows,
                asr_fit_s=args.asr_fit_s, asr_workers=args.asr_workers, asr_threads=args.asr_threads,
                max_audio_speed=args.max_audio_speed,
                max_connections=args.max_connections, max_connections_per_address=args.max_connections_per_address,
                header_timeout_s=args.header_timeout_s)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from(args, os.environ)
    except SettingsError as e:
        print(f"callwatch serve: {e}", file=sys.stderr)
        return 2
    settings = ensure_secret(settings)
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                            **conn_limits.protocols(settings),
                            # Larger than our own frame limit, so an oversized frame gets our explanatory error.
                            ws_max_size=4 * settings.max_frame_bytes, log_level=args.log_level,
                            # Call audio does not compress; inflating every frame only costs processor time.
                            ws_per_message_deflate=False,
                            proxy_headers=True, timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout_s))
    logsafe.install()  # after uvicorn has configured its loggers
    uvicorn.Server(config).run()
    return 0
