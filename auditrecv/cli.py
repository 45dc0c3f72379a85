"""The `auditrecv` command: serve, check-config, decode, import, export."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from auditrecv import __version__
from auditrecv.config import Config, ConfigError, load_config
from auditrecv.logsetup import setup_logging
from auditrecv.spool.store import SpoolError

log = logging.getLogger("auditrecv")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="auditrecv",
        description="Receive illumos audit_remote and Linux audisp-remote audit streams and index them "
        "into Elasticsearch/OpenSearch as ECS documents.",
    )
    p.add_argument("--version", action="version", version=f"auditrecv {__version__}")
    p.add_argument("--log-format", choices=["text", "json"], help="log format on stderr (default: config)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="(default: config)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("serve", help="run the receiver")
    s.add_argument("--config", "-c", metavar="FILE", help="TOML configuration (default: built-in defaults)")

    c = sub.add_parser("check-config", help="validate a configuration file and exit")
    c.add_argument("file", metavar="FILE")

    d = sub.add_parser("decode", help="decode BSM trails or Linux audit logs to JSON on stdout")
    d.add_argument("files", nargs="*", metavar="FILE", help="files to decode ('-' or none: stdin)")
    d.add_argument("--raw", action="store_true", help="print the decoded structure instead of ECS documents")
    d.add_argument("--schema", choices=["ecs", "auditrecv-v1"], default="ecs", help="document shape")
    d.add_argument("--host", default="", help="host name to record as the sender")

    i = sub.add_parser("import", help="backfill trails or audit.log files through the spool into the engine")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--config", "-c", metavar="FILE")
    i.add_argument("--host", default="", help="host name to record as the sender (part of document identity)")
    i.add_argument(
        "--no-wait",
        action="store_true",
        help="only spool them; the next `auditrecv serve` indexes them (the service must be stopped meanwhile: "
        "one process owns the spool)",
    )

    e = sub.add_parser("export", help="drain the spool into a file instead of a search engine")
    e.add_argument("--ndjson", required=True, metavar="FILE", help="output file ('-' for stdout)")
    e.add_argument("--config", "-c", metavar="FILE")
    e.add_argument("--keep", action="store_true", help="copy only: leave the records in the spool")
    return p


def _load(path: str | None) -> Config:
    return load_config(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return 2
    try:
        cfg = _load(getattr(args, "config", None)) if args.command != "check-config" else None
    except ConfigError as exc:
        print(f"auditrecv: config error: {exc}", file=sys.stderr)
        return 2
    level = args.log_level or (cfg.logging.level if cfg else "info")
    fmt = args.log_format or (cfg.logging.format if cfg else "text")
    setup_logging(level, fmt)

    try:
        if args.command == "check-config":
            try:
                load_config(args.file)
            except ConfigError as exc:
                print(f"auditrecv: config error: {exc}", file=sys.stderr)
                return 2
            print(f"{args.file}: OK")
            return 0
        assert cfg is not None
        if args.command == "serve":
            from auditrecv.app import serve

            return asyncio.run(serve(cfg))
        if args.command == "decode":
            from auditrecv.tools import decode_files

            return decode_files(args.files or ["-"], raw=args.raw, schema=args.schema, host=args.host)
        if args.command == "import":
            from auditrecv.tools import import_files

            return asyncio.run(import_files(cfg, args.files, host=args.host, wait=not args.no_wait))
        if args.command == "export":
            from auditrecv.tools import export_spool

            return asyncio.run(export_spool(cfg, args.ndjson, keep=args.keep))
    except KeyboardInterrupt:
        return 130
    except SpoolError as exc:  # e.g. the spool is held by a running service
        print(f"auditrecv: {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 2
