"""The ONNX embedder against the real bundled model: export, cache, and parity with sentence-transformers.

Tests on the real model are marked slow: the one-time export (torch, sentence-transformers, the
verification) plus the reference model take 30-60 s on the shared 2-core machine. The cache,
locking and refusal rules are tested without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mem0_mcp.config import DEFAULT_EMBEDDER_MODEL, Settings
from mem0_mcp.embedding import factory, onnx_cache, onnx_export, onnx_runtime
from mem0_mcp.embedding import onnx_format as fmt
from mem0_mcp.embedding import sentence_transformers as st_backend
from mem0_mcp.embedding.base import Embedder, resolve_model_path
from mem0_mcp.embedding.factory import build_embedder, build_onnx_embedder
from mem0_mcp.embedding.onnx_format import Manifest, OnnxUnavailableError
from mem0_mcp.embedding.onnx_runtime import OnnxEmbedder

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

SENTENCES = [
    "I love hiking in the mountains",
    "outdoor activities",
    "my tax return",
    "The user's sister is called Ana and lives in Lisbon.",
    "",
    "  leading and trailing spaces  ",
    "ÉMOJI 🙂 and Ünïcödé, 中文句子。",
    "Prefers green tea over coffee; allergic to peanuts. " * 40,  # past max_seq_length
]


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"data_dir": data_dir, "llm_provider": "none", "user_id": "tester"}
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, OnnxEmbedder]:
    settings = _settings(tmp_path_factory.mktemp("onnx-data"), embedder="onnx")
    embedder = build_onnx_embedder(settings)
    return settings, embedder


@pytest.fixture(scope="module")
def onnx_model(exported: tuple[Settings, OnnxEmbedder]) -> OnnxEmbedder:
    return exported[1]


@pytest.fixture(scope="module")
def reference() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model_path(DEFAULT_EMBEDDER_MODEL), device="cpu")


@pytest.mark.slow
def test_first_start_exports_then_later_starts_load_the_cache(
    exported: tuple[Settings, OnnxEmbedder],
) -> None:
    settings, first = exported
    assert first.export_seconds is not None and first.export_seconds > 0
    folder = first.folder
    assert folder.parent == settings.models_dir
    for name in (fmt.MODEL_FILE, fmt.TOKENIZER_FILE, fmt.POOLING_FILE, fmt.MANIFEST_FILE):
        assert (folder / name).is_file()
    manifest = json.loads((folder / fmt.MANIFEST_FILE).read_text())
    assert manifest["dimension"] == 384
    assert manifest["verification"]["min_cosine"] >= fmt.MIN_COSINE
    assert manifest["source_path"] == str(Path(resolve_model_path(DEFAULT_EMBEDDER_MODEL)).resolve())
    assert "model.safetensors" in manifest["source_files"]
    assert {"torch", "transformers", "onnxruntime"} <= set(manifest["versions"])
    mtime = (folder / fmt.MODEL_FILE).stat().st_mtime_ns

    second = build_onnx_embedder(settings)
    assert second.export_seconds is None
    assert second.folder == folder
    assert (folder / fmt.MODEL_FILE).stat().st_mtime_ns == mtime
    # Nothing but the export and its lock file is left behind in the models folder.
    assert sorted(p.name for p in settings.models_dir.iterdir()) == sorted(
        [folder.name, f".{folder.name}.lock"]
    )
    np.testing.assert_allclose(second.embed(SENTENCES), first.embed(SENTENCES), atol=1e-6)


@pytest.mark.slow
def test_cached_start_does_not_import_torch(exported: tuple[Settings, OnnxEmbedder]) -> None:
    settings, _ = exported
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mem0_mcp.config import Settings\n"
        "t = time.perf_counter()\n"
        "from mem0_mcp.embedding.factory import build_onnx_embedder\n"
        f"e = build_onnx_embedder(Settings(data_dir=Path({str(settings.data_dir)!r})))\n"
        "assert e.export_seconds is None, 're-exported'\n"
        "assert e.embed(['hello']).shape == (1, 384)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'sentence_transformers' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_satisfies_the_embedder_protocol(onnx_model: OnnxEmbedder) -> None:
    assert isinstance(onnx_model, Embedder)
    assert onnx_model.name == DEFAULT_EMBEDDER_MODEL
    assert onnx_model.dimension == 384
    assert onnx_model.max_seq_length == 256


@pytest.mark.slow
def test_vectors_match_sentence_transformers(onnx_model: OnnxEmbedder, reference: Any) -> None:
    expected = reference.encode(SENTENCES, normalize_embeddings=True, show_progress_bar=False)
    got = onnx_model.embed(SENTENCES)
    cos = np.sum(got * np.asarray(expected, dtype=np.float32), axis=1)
    assert cos.min() >= 0.9999, cos


@pytest.mark.slow
def test_batch_equals_single(onnx_model: OnnxEmbedder) -> None:
    batched = onnx_model.embed(SENTENCES)
    singles = np.vstack([onnx_model.embed([s]) for s in SENTENCES])
    np.testing.assert_allclose(batched, singles, atol=2e-5)


@pytest.mark.slow
def test_length_sorting_keeps_input_order_across_chunks(onnx_model: OnnxEmbedder) -> None:
    model = onnx_model
    small_batches = OnnxEmbedder(model.folder, name=model.name, batch_size=3, threads=1)
    texts = [f"note {i}: " + "word " * ((i * 7) % 23) for i in range(20)]
    np.testing.assert_allclose(small_batches.embed(texts), model.embed(texts), atol=2e-5)


@pytest.mark.slow
def test_empty_input(onnx_model: OnnxEmbedder) -> None:
    out = onnx_model.embed([])
    assert out.shape == (0, 384)
    assert out.dtype == np.float32


@pytest.mark.slow
def test_output_is_normalized_float32(onnx_model: OnnxEmbedder) -> None:
    out = onnx_model.embed(SENTENCES)
    assert out.dtype == np.float32
    assert out.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_semantic_sanity(onnx_model: OnnxEmbedder) -> None:
    hike, outdoor, tax = onnx_model.embed(
        ["I love hiking in the mountains", "outdoor activities", "my tax return"]
    )
    assert float(hike @ outdoor) > float(hike @ tax) + 0.2


@pytest.mark.slow
def test_build_embedder_picks_onnx(exported: tuple[Settings, OnnxEmbedder]) -> None:
    settings, _ = exported
    for choice in ("auto", "onnx"):
        built = build_embedder(settings.model_copy(update={"embedder": choice}))
        assert isinstance(built, OnnxEmbedder)
        assert built.export_seconds is None


# --------------------------------------------------------------------------- cache rules, no export


def test_slug_is_filesystem_safe_and_unique() -> None:
    a = onnx_cache.model_slug("bundled:all-MiniLM-L6-v2")
    assert a.startswith("bundled_all-MiniLM-L6-v2-")
    assert onnx_cache.model_slug("org/name") != onnx_cache.model_slug("org_name")
    for model in ("/home/me/models/My Model/", "C:\\models\\x", "../../etc", ":::"):
        slug = onnx_cache.model_slug(model)
        assert "/" not in slug and "\\" not in slug and not slug.startswith(".")


@pytest.mark.slow
def test_stale_cache_is_detected(exported: tuple[Settings, OnnxEmbedder], tmp_path: Path) -> None:
    _, model = exported
    source = onnx_cache.resolve_source_folder(DEFAULT_EMBEDDER_MODEL)
    fingerprint = onnx_cache.source_fingerprint(source)
    assert onnx_cache.cache_problem(model.folder, source, fingerprint) is None
    changed = dict(fingerprint, **{"model.safetensors": [1, 2]})
    assert onnx_cache.cache_problem(model.folder, source, changed) == "source model files changed"
    assert onnx_cache.cache_problem(tmp_path, source, fingerprint) == "no cached export"
    (tmp_path / fmt.MANIFEST_FILE).write_text("{not json")
    assert "unreadable manifest" in str(onnx_cache.cache_problem(tmp_path, source, fingerprint))
    manifest = json.loads((model.folder / fmt.MANIFEST_FILE).read_text())
    (tmp_path / fmt.MANIFEST_FILE).write_text(json.dumps(manifest))
    assert onnx_cache.cache_problem(tmp_path, source, fingerprint) == f"{fmt.MODEL_FILE} is missing"
    (tmp_path / fmt.MANIFEST_FILE).write_text(json.dumps(dict(manifest, format_version=0)))
    assert onnx_cache.cache_problem(tmp_path, source, fingerprint) == "export format changed"


def test_concurrent_exports_run_once_and_never_leave_a_partial_folder(tmp_path: Path) -> None:
    calls: list[int] = []

    def slow_export(source: Path, out_dir: Path, *, model: str | None = None) -> Manifest:
        calls.append(threading.get_ident())
        time.sleep(0.5)
        (out_dir / fmt.MODEL_FILE).write_bytes(b"x" * 10)
        return {
            "format_version": fmt.FORMAT_VERSION,
            "source_path": str(source),
            "files": {fmt.MODEL_FILE: {"size": 10}},
            "export_seconds": 0.5,
            "verification": {"min_cosine": 1.0, "sentences": 0, "threshold": fmt.MIN_COSINE},
        }

    results: list[tuple[Path, bool]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                onnx_cache.ensure_exported(DEFAULT_EMBEDDER_MODEL, tmp_path, export=slow_export)
            )
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len({folder for folder, _ in results}) == 1
    assert sorted(now for _, now in results) == [False, False, True]
    folder = results[0][0]
    assert (folder / fmt.MODEL_FILE).read_bytes() == b"x" * 10
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_a_changed_source_replaces_the_cached_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exports: list[Path] = []

    def fake_export(source: Path, out_dir: Path, *, model: str | None = None) -> Manifest:
        exports.append(out_dir)
        (out_dir / fmt.MODEL_FILE).write_text(str(len(exports)))
        return {
            "format_version": fmt.FORMAT_VERSION,
            "source_path": str(source),
            "files": {},
            "export_seconds": 0.0,
            "verification": {"min_cosine": 1.0, "sentences": 0, "threshold": fmt.MIN_COSINE},
        }

    folder, now = onnx_cache.ensure_exported(DEFAULT_EMBEDDER_MODEL, tmp_path, export=fake_export)
    assert now
    assert onnx_cache.ensure_exported(DEFAULT_EMBEDDER_MODEL, tmp_path, export=fake_export) == (folder, False)
    real = onnx_cache.source_fingerprint
    monkeypatch.setattr(onnx_cache, "source_fingerprint", lambda src: {**real(src), "new-file": [1, 1]})
    assert onnx_cache.ensure_exported(DEFAULT_EMBEDDER_MODEL, tmp_path, export=fake_export) == (folder, True)
    assert (folder / fmt.MODEL_FILE).read_text() == "2"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_a_refused_model_is_remembered_until_its_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def refuse(source: Path, out_dir: Path, *, model: str | None = None) -> Manifest:
        calls.append(out_dir)
        raise OnnxUnavailableError("pooling 'weightedmean' is not supported")

    for _ in range(2):
        with pytest.raises(OnnxUnavailableError, match="weightedmean"):
            onnx_cache.ensure_exported(DEFAULT_EMBEDDER_MODEL, tmp_path, export=refuse)
    assert len(calls) == 1
    real = onnx_cache.source_fingerprint
    monkeypatch.setattr(onnx_cache, "source_fingerprint", lambda src: {**real(src), "new-file": [1, 1]})
    with pytest.raises(OnnxUnavailableError):
        onnx_cache.ensure_exported(DEFAULT_EMBEDDER_MODEL, tmp_path, export=refuse)
    assert len(calls) == 2
    # Installing or upgrading a package the export depends on earns another try too.
    monkeypatch.setattr(onnx_cache, "export_environment", lambda: {"onnx": "1.99"})
    with pytest.raises(OnnxUnavailableError):
        onnx_cache.ensure_exported(DEFAULT_EMBEDDER_MODEL, tmp_path, export=refuse)
    assert len(calls) == 3
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def _copy_model(tmp_path: Path) -> Path:
    """The bundled model as symlinks, so one config file can be changed cheaply."""
    source = Path(resolve_model_path(DEFAULT_EMBEDDER_MODEL))
    folder = tmp_path / "model-copy"
    for path in source.rglob("*"):
        if path.is_file():
            (folder / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.relative_to(source)).symlink_to(path)
    return folder


def _rewrite(path: Path, data: Any) -> None:
    path.unlink()  # a symlink into the installed model: replace it, never write through it
    path.write_text(json.dumps(data))


def test_unsupported_pooling_is_refused_before_loading_torch(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    pooling = folder / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text())
    _rewrite(pooling, {**cfg, "pooling_mode_mean_tokens": False, "pooling_mode_weightedmean_tokens": True})
    t0 = time.perf_counter()
    with pytest.raises(OnnxUnavailableError, match="pooling 'weightedmean' is not supported"):
        onnx_cache.ensure_exported(str(folder), tmp_path / "models")
    assert time.perf_counter() - t0 < 2


def test_extra_modules_are_refused_before_loading_torch(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    _rewrite(folder / "modules.json", modules)
    with pytest.raises(OnnxUnavailableError, match=r"modules \['Dense'\]"):
        onnx_cache.ensure_exported(str(folder), tmp_path / "models")


def test_export_child_reports_a_refusal_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(source: Path, out_dir: Path, *, model: str | None = None) -> Manifest:
        raise OnnxUnavailableError("pooling 'weightedmean'\nis not supported")

    monkeypatch.setattr(onnx_export, "export_model", refuse)
    assert onnx_export.main([str(tmp_path), str(tmp_path)]) == fmt.EXIT_REFUSED
    assert capsys.readouterr().out.splitlines()[-1] == "pooling 'weightedmean' is not supported"


class Transformer:  # names matter: the pipeline is recognised by module class names
    tokenizer = None


class Pooling:
    def __init__(self, mode: str) -> None:
        self.pooling_mode = mode


class Dense:
    pass


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ([Transformer(), Pooling("weightedmean")], "pooling 'weightedmean' is not supported"),
        ([Transformer(), Pooling("lasttoken")], "pooling 'lasttoken' is not supported"),
        ([Transformer(), Pooling("mean"), Dense()], "modules after pooling ['Dense']"),
        ([Pooling("mean")], "is not Transformer + Pooling"),
        ([Transformer(), Pooling("mean")], "needs a fast (tokenizers) tokenizer"),
    ],
)
def test_unsupported_pipelines_are_refused_clearly(modules: list[Any], message: str) -> None:
    with pytest.raises(OnnxUnavailableError) as info:
        onnx_export.inspect_pipeline(modules, Path("/models/x"))
    assert message in str(info.value)
    assert "sentence-transformers" in str(info.value)


def test_auto_falls_back_when_onnx_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class StandIn:
        def __init__(self, model: str, **kwargs: Any) -> None:
            self.model = model

    def refuse(settings: Settings) -> OnnxEmbedder:
        raise OnnxUnavailableError("pooling 'weightedmean' is not supported")

    monkeypatch.setattr(st_backend, "SentenceTransformerEmbedder", StandIn)
    monkeypatch.setattr(factory, "build_onnx_embedder", refuse)
    assert isinstance(build_embedder(_settings(tmp_path, embedder="auto")), StandIn)
    with pytest.raises(OnnxUnavailableError):
        build_embedder(_settings(tmp_path, embedder="onnx"))


def test_pooling_modes_follow_the_attention_mask() -> None:
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    np.testing.assert_allclose(onnx_runtime.pool(hidden, mask, "mean"), [[2, 3], [7, 8]])
    np.testing.assert_allclose(onnx_runtime.pool(hidden, mask, "cls"), [[0, 1], [6, 7]])
    np.testing.assert_allclose(onnx_runtime.pool(hidden, mask, "max"), [[4, 5], [8, 9]])
    np.testing.assert_allclose(
        onnx_runtime.pool(hidden, mask, "mean_sqrt_len_tokens"),
        [[6 / 3**0.5, 9 / 3**0.5], [14 / 2**0.5, 16 / 2**0.5]],
    )
