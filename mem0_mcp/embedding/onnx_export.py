"""The one-time export of a sentence-transformers folder to ONNX (torch), verified against it.

Run in a child process by :mod:`mem0_mcp.embedding.onnx_cache`, so torch never stays loaded in
the server; ``python -m mem0_mcp.embedding.onnx_export SOURCE OUT_DIR`` exports one folder by
hand (the manifest, or the reason for a refusal, is the last line on stdout). An export is accepted only if
its vectors, tokenizer included, match sentence-transformers (:data:`MIN_COSINE`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mem0_mcp.embedding.onnx_format import (
    EXIT_REFUSED,
    FORMAT_VERSION,
    MIN_COSINE,
    MODEL_FILE,
    POOLING_FILE,
    SUPPORTED_POOLING,
    TOKENIZER_FILE,
    ExportSpec,
    FileRecord,
    Manifest,
    OnnxUnavailableError,
    Verification,
    write_json,
)
from mem0_mcp.embedding.onnx_runtime import OnnxEmbedder

# Opset 17 is old enough for any onnxruntime this package accepts (>= 1.18) and has every op BERT-style
# encoders need, including LayerNormalization.
OPSET = 17
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
logger = logging.getLogger(__name__)

# Covers what matters at export time: truncation past max_seq_length, padding within a batch,
# the empty string, accents and non-Latin scripts, and a query-sized sentence.
VERIFY_SENTENCES = (
    "I love hiking in the mountains.",
    "What did I tell you about my sister's birthday?",
    "",
    "Café, naïve résumé — déjà vu. 東京で寿司を食べた。",
    "The user prefers dark mode and vim keybindings. " * 60,
    "ok",
)


POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def precheck_folder(source: Path) -> None:
    """Refuse, from the config files alone, pipelines the export would refuse after loading torch.

    Only what is certain is refused here; anything unusual is left to the export, which decides
    on the loaded model and checks its vectors anyway.
    """
    try:
        modules = json.loads((source / "modules.json").read_text())
    except (OSError, ValueError):
        return  # a plain transformers folder: sentence-transformers adds mean pooling itself
    if not isinstance(modules, list):
        return
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)]
    extra = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if extra:
        raise OnnxUnavailableError(
            f"embedder_model {source}: modules {extra} are not supported by the ONNX backend "
            "(only Transformer, Pooling, Normalize); use embedder='sentence-transformers'"
        )
    for module in modules:
        if not (isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling")):
            continue
        try:
            cfg = json.loads((source / str(module.get("path", "")) / "config.json").read_text())
        except (OSError, ValueError):
            return
        if not isinstance(cfg, dict):
            return
        mode = cfg.get("pooling_mode")
        if mode is None:
            flagged = [name for key, name in POOLING_FLAGS.items() if cfg.get(key)]
            mode = flagged[0] if len(flagged) == 1 else flagged or None
        if isinstance(mode, list) and len(mode) == 1:
            mode = mode[0]
        if mode is not None and mode not in SUPPORTED_POOLING:
            raise OnnxUnavailableError(
                f"embedder_model {source}: pooling {mode!r} is not supported by the ONNX backend "
                f"(supported: {', '.join(SUPPORTED_POOLING)}); use embedder='sentence-transformers'"
            )


def inspect_pipeline(st_model: Any, source: Path) -> ExportSpec:
    """What the ONNX side needs to reproduce a loaded sentence-transformers pipeline.

    Takes the model (any iterable of modules, recognised by class name) and its folder for the
    messages. Raises :class:`OnnxUnavailableError` saying why the backend cannot serve it.
    """
    modules = list(st_model)
    kinds = [type(m).__name__ for m in modules]
    if len(modules) < 2 or kinds[0] != "Transformer" or kinds[1] != "Pooling":
        raise OnnxUnavailableError(
            f"embedder_model {source}: pipeline {kinds} is not Transformer + Pooling [+ Normalize]; "
            "use embedder='sentence-transformers'"
        )
    if any(k != "Normalize" for k in kinds[2:]):
        raise OnnxUnavailableError(
            f"embedder_model {source}: modules after pooling {kinds[2:]} are not supported by the ONNX "
            "backend (only Normalize is); use embedder='sentence-transformers'"
        )
    if getattr(st_model, "default_prompt_name", None):
        raise OnnxUnavailableError(
            f"embedder_model {source}: a default prompt ({st_model.default_prompt_name!r}) is not supported "
            "by the ONNX backend; use embedder='sentence-transformers'"
        )
    pooling = modules[1]
    mode: Any = getattr(pooling, "pooling_mode", None)
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):  # sentence-transformers < 6
        mode = pooling.get_pooling_mode_str()
    if isinstance(mode, (list, tuple)) and len(mode) == 1:
        mode = mode[0]
    if mode not in SUPPORTED_POOLING:
        raise OnnxUnavailableError(
            f"embedder_model {source}: pooling {mode!r} is not supported by the ONNX backend "
            f"(supported: {', '.join(SUPPORTED_POOLING)}); use embedder='sentence-transformers'"
        )
    transformer = modules[0]
    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise OnnxUnavailableError(
            f"embedder_model {source}: the ONNX backend needs a fast (tokenizers) tokenizer; "
            "use embedder='sentence-transformers'"
        )
    if getattr(tokenizer, "padding_side", "right") != "right":
        raise OnnxUnavailableError(f"embedder_model {source}: left-padding tokenizers are not supported")
    auto_model = transformer.auto_model
    params = set(inspect.signature(auto_model.forward).parameters)
    wanted = set(getattr(tokenizer, "model_input_names", KNOWN_INPUTS))
    input_names = [n for n in KNOWN_INPUTS if n in params and n in wanted]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        raise OnnxUnavailableError(
            f"embedder_model {source}: {type(auto_model).__name__} does not take input_ids and attention_mask"
        )
    max_len = getattr(st_model, "max_seq_length", None) or getattr(tokenizer, "model_max_length", None)
    if not isinstance(max_len, int) or max_len <= 0 or max_len > 100_000:
        raise OnnxUnavailableError(f"embedder_model {source}: no usable max_seq_length ({max_len!r})")
    get_dim = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    return ExportSpec(
        pooling_mode=str(mode),
        max_seq_length=int(max_len),
        dimension=int(get_dim()),
        pad_token_id=int(tokenizer.pad_token_id or 0),
        input_names=input_names,
        output_name="token_embeddings",
    )


def use_plain_attention(auto_model: Any) -> None:
    """Trace attention as its matrix products, not torch's fused kernel: exported, the fused
    kernel's guards (IsNaN, Where, the mask's shape arithmetic) are ~100 small operators more per
    call. all-MiniLM-L6-v2, 1,000 LoCoMo turns one at a time, interleaved: 6.0 vs 6.3 ms (x0.95),
    vectors within 2e-7. A model that has no plain attention keeps its own."""
    setter = getattr(auto_model, "set_attn_implementation", None)
    if setter is None:
        return
    try:
        setter("eager")
    except (ValueError, ImportError, NotImplementedError) as exc:
        logger.info("ONNX export: attention traced as the model has it (%s)", exc)


def export_model(source: Path, out_dir: Path, *, model: str | None = None) -> Manifest:
    """Export the transformer of a sentence-transformers folder to ``out_dir`` and verify it.

    Imports torch (seconds); the returned manifest lacks only ``source_files``. ``model`` is the
    setting recorded in the export. Raises :class:`OnnxUnavailableError` when the model cannot
    be exported or its vectors do not match sentence-transformers.
    """
    t0 = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import sentence_transformers
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise OnnxUnavailableError(f"ONNX export needs torch and sentence-transformers: {exc}") from exc

    st_model: Any = SentenceTransformer(str(source), device="cpu")
    st_model.eval()
    spec = inspect_pipeline(st_model, source)
    auto_model: Any = st_model[0].auto_model
    use_plain_attention(auto_model)
    input_names: list[str] = spec["input_names"]

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = auto_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            out = self.inner(**dict(zip(input_names, inputs, strict=True)), return_dict=True)
            hidden = getattr(out, "last_hidden_state", None)
            return hidden if hidden is not None else out[0]

    # A padded example, so attention masking is traced as a computation and not folded away.
    example = st_model[0].tokenizer(
        ["An example sentence to trace the encoder with.", "Short."], padding=True, return_tensors="pt"
    )
    examples = {
        n: example[n] if n in example else torch.zeros_like(example["input_ids"]) for n in input_names
    }
    args = tuple(examples[n] for n in input_names)
    axes = {n: {0: "batch", 1: "sequence"} for n in input_names}
    axes[spec["output_name"]] = {0: "batch", 1: "sequence"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # dynamo=False: the TorchScript exporter needs `onnx` but not onnxscript.
            torch.onnx.export(
                _Encoder().eval(),
                args,
                str(out_dir / MODEL_FILE),
                input_names=input_names,
                output_names=[spec["output_name"]],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:
        raise OnnxUnavailableError(
            f"embedder_model {source}: torch could not export {type(auto_model).__name__} to ONNX: {exc}"
        ) from exc

    # Take the tokenizer as sentence-transformers configured it (e.g. do_lower_case is applied to
    # its normalizer), not the raw tokenizer.json of the folder, whose truncation may differ.
    backend = Tokenizer.from_str(st_model[0].tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(max_length=spec["max_seq_length"])
    backend.save(str(out_dir / TOKENIZER_FILE))
    write_json(out_dir / POOLING_FILE, {"model": model, **spec})

    verification = verify(st_model, out_dir, spec)
    files = {
        fname: FileRecord(size=(out_dir / fname).stat().st_size, sha256=sha256(out_dir / fname))
        for fname in (MODEL_FILE, TOKENIZER_FILE, POOLING_FILE)
    }
    import onnxruntime
    import tokenizers

    return Manifest(
        format_version=FORMAT_VERSION,
        model=model,
        source_path=str(source),
        dimension=spec["dimension"],
        pooling_mode=spec["pooling_mode"],
        max_seq_length=spec["max_seq_length"],
        files=files,
        verification=verification,
        versions={
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "onnxruntime": onnxruntime.__version__,
            "tokenizers": tokenizers.__version__,
            "opset": OPSET,
        },
        exported_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        export_seconds=round(time.perf_counter() - t0, 3),
    )


def verify(st_model: Any, out_dir: Path, spec: ExportSpec) -> Verification:
    """Check the export in ``out_dir`` against the loaded sentence-transformers model.

    Returns the worst cosine found; raises :class:`OnnxUnavailableError` unless the whole ONNX
    path (tokenizer included) reproduces the reference to :data:`MIN_COSINE`.
    """
    texts = list(VERIFY_SENTENCES)
    reference = np.asarray(
        st_model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ),
        dtype=np.float32,
    )
    # A batch of 2 forces both padding and more than one chunk through the ONNX path.
    onnx_model = OnnxEmbedder(out_dir, batch_size=2, threads=1)
    if onnx_model.dimension != reference.shape[1]:
        raise OnnxUnavailableError(
            f"ONNX export: dimension {onnx_model.dimension} != sentence-transformers {reference.shape[1]}"
        )
    batched = onnx_model.embed(texts)
    singles = np.vstack([onnx_model.embed([t]) for t in texts])
    cos_batch = np.sum(batched * reference, axis=1)
    cos_single = np.sum(singles * reference, axis=1)
    worst = float(min(cos_batch.min(), cos_single.min()))
    if not worst >= MIN_COSINE:
        raise OnnxUnavailableError(
            f"ONNX export rejected: cosine to sentence-transformers is {worst:.6f} (< {MIN_COSINE}); "
            "use embedder='sentence-transformers'"
        )
    return Verification(min_cosine=round(worst, 7), sentences=len(texts), threshold=MIN_COSINE)


def main(argv: list[str] | None = None) -> int:
    """The export child: prints the manifest (or the refusal) as the last stdout line.

    Returns the exit status: 0, or :data:`EXIT_REFUSED` when the model is refused.
    """
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m mem0_mcp.embedding.onnx_export")
    ap.add_argument("source", type=Path, help="sentence-transformers folder")
    ap.add_argument("out_dir", type=Path, help="existing, empty folder to write the export into")
    ap.add_argument("--model", default=None, help="model setting, recorded in the export")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        manifest = export_model(args.source, args.out_dir, model=args.model)
    except OnnxUnavailableError as exc:
        sys.stdout.write(str(exc).replace("\n", " ") + "\n")
        return EXIT_REFUSED
    sys.stdout.write(json.dumps(manifest) + "\n")
    return 0


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
