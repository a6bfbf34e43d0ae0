"""``mem0-mcp warmup``: do the one-time model conversion now (``make install`` runs it), so the
first add of the first client does not wait for it. Exit status: 0 ready, 1 failed, 2 bad settings."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def add_warmup_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "warmup",
        help="convert and load the embedding model once, ahead of the first client",
        description="Load MEM0_MCP_EMBEDDER_MODEL with the configured backend, converting it to ONNX "
        "first when no conversion is cached in MEM0_MCP_MODEL_CACHE_DIR (default <data_dir>/models). "
        "Safe to run while servers start: concurrent conversions of one model wait for each other.",
    )


def run_warmup(args: argparse.Namespace, configure_logging: Callable[[str], None]) -> int:
    from mem0_mcp.config import load_settings
    from mem0_mcp.engine.warmup import warm_up

    settings = load_settings()  # a bad setting: main() says it in one line, exit 2
    configure_logging(settings.log_level)
    try:
        result = warm_up(settings)
    except Exception as exc:  # any load failure is reported as one line, not a traceback
        print(f"mem0-mcp warmup: cannot load {settings.embedder_model!r}: {exc}", file=sys.stderr)
        return 1
    converted = (
        f"converted to ONNX in {result.export_seconds:.1f}s, "
        if result.export_seconds is not None
        else "conversion already cached, "
    )
    if result.backend != "onnx":
        converted = ""
    print(
        f"model ready: {result.model} ({result.backend}, {result.dimension}-d); "
        f"{converted}loaded in {result.seconds:.1f}s ({settings.models_dir})"
    )
    return 0
