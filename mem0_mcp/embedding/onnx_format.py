"""What an ONNX export folder holds: file names, format version, the typed configs, the refusal error.

The runtime reads these files, the export writes them and the cache checks them; this module is
what the three agree on, so none of them needs another's internals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

from mem0_mcp.errors import ConfigError

# Bump when the layout or the meaning of the exported files changes: older caches are re-exported.
# 2: attention traced as its matrix products (onnx_export.use_plain_attention).
FORMAT_VERSION = 2
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
POOLING_FILE = "pooling.json"
MANIFEST_FILE = "manifest.json"
MIN_COSINE = 0.9999
SUPPORTED_POOLING = ("mean", "cls", "max", "mean_sqrt_len_tokens")
# Exit status of the export child (``python -m mem0_mcp.embedding.onnx_export``) when it refuses
# the model, as opposed to crashing.
EXIT_REFUSED = 3


class OnnxUnavailableError(ConfigError):
    """This model cannot be served by the ONNX backend; 'auto' falls back to sentence-transformers."""


class ExportSpec(TypedDict):
    """``pooling.json``: what the runtime needs besides the graph and the tokenizer."""

    pooling_mode: str
    max_seq_length: int
    dimension: int
    pad_token_id: int
    input_names: list[str]
    output_name: str


class FileRecord(TypedDict, total=False):
    size: int
    sha256: str


class Verification(TypedDict):
    min_cosine: float
    sentences: int
    threshold: float


class Manifest(TypedDict, total=False):
    """``manifest.json``: how the export was made and what it was made from (for cache checks)."""

    format_version: int
    model: str | None
    source_path: str
    source_files: dict[str, list[int]]
    dimension: int
    pooling_mode: str
    max_seq_length: int
    files: dict[str, FileRecord]
    verification: Verification
    versions: dict[str, str | int]
    exported_at: str
    export_seconds: float


def read_spec(folder: Path) -> tuple[ExportSpec, str | None]:
    """The export config of ``folder`` and the model setting it was made for.

    Raises :class:`OnnxUnavailableError` when the file is missing, unreadable or incomplete.
    """
    path = folder / POOLING_FILE
    try:
        cfg = json.loads(path.read_text())
        spec = ExportSpec(
            pooling_mode=str(cfg["pooling_mode"]),
            max_seq_length=int(cfg["max_seq_length"]),
            dimension=int(cfg["dimension"]),
            pad_token_id=int(cfg["pad_token_id"]),
            input_names=[str(n) for n in cfg["input_names"]],
            output_name=str(cfg["output_name"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OnnxUnavailableError(f"{path}: unreadable export config: {exc}") from exc
    if spec["pooling_mode"] not in SUPPORTED_POOLING:
        raise OnnxUnavailableError(f"{folder}: unsupported pooling mode {spec['pooling_mode']!r}")
    model = cfg.get("model")
    return spec, str(model) if model else None


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON (stable diffs of manifests)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
