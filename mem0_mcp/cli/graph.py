"""``mem0-mcp graph export|rebuild``: the scope's graph as a file, or re-derived from its memories.

Importing this module is cheap (the CLI builds its parser on every start); the engine and Kùzu
are imported only when a graph command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.models import MemoryPage, Scope


def add_graph_parser(commands: argparse._SubParsersAction) -> None:
    graph = commands.add_parser("graph", help="export or rebuild the entity graph of a scope")
    sub = graph.add_subparsers(dest="graph_command", metavar="graph-command", required=True)
    export = sub.add_parser(
        "export",
        help="write a scope's graph as JSON (nodes, edges), GraphML, Graphviz DOT or an HTML drawing",
        description="Write the graph of a scope. GraphML opens in yEd, Gephi or Cytoscape; DOT renders "
        "with Graphviz (dot -Tsvg). Invalidated relations are included (dashed in DOT).",
    )
    rebuild = sub.add_parser(
        "rebuild",
        help="clear a scope's graph and extract it again from its stored memories (needs an LLM)",
    )
    for p in (export, rebuild):
        p.add_argument("--user-id")
        p.add_argument("--agent-id")
        p.add_argument("--run-id")
    export.add_argument("--format", choices=["json", "graphml", "dot", "html"], default="json")
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")


def run_graph_command(args: argparse.Namespace) -> int:
    from mem0_mcp.config import load_settings
    from mem0_mcp.errors import Mem0Error
    from mem0_mcp.graph.export import to_dot, to_graphml
    from mem0_mcp.graph.memory import GraphMemory
    from mem0_mcp.models import Scope

    scope = Scope(user_id=args.user_id, agent_id=args.agent_id, run_id=args.run_id)
    if scope.is_empty():
        print("mem0-mcp graph: give --user-id, --agent-id or --run-id", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        if args.graph_command == "export" and settings.graph_enabled != "true":
            if not settings.graph_on_disk:
                print(
                    "mem0-mcp graph: the entity graph is off "
                    f"(MEM0_MCP_GRAPH_ENABLED={settings.graph_enabled}) and "
                    f"{settings.data_dir} holds none: nothing to export; turn it on with "
                    "MEM0_MCP_GRAPH_ENABLED=true (relations are extracted on add, with an LLM)",
                    file=sys.stderr,
                )
                return 1
            print(
                f"mem0-mcp graph: the graph is off; exporting the one kept in {settings.data_dir}",
                file=sys.stderr,
            )
        if args.graph_command == "export":
            # Export needs neither the embedder nor an LLM: read the store directly.
            graph = GraphMemory.open(settings, embed=_no_embedder, llm=lambda: None).export(scope)
            if args.format == "graphml":
                text = to_graphml(graph)
            elif args.format == "dot":
                text = to_dot(graph)
            elif args.format == "html":  # self-contained: the drawing is SVG, no script
                from mem0_mcp.ui.graph_svg import to_html

                text = to_html(graph)
            else:
                text = json.dumps(graph.model_dump(), indent=2, ensure_ascii=False) + "\n"
            if args.out is None:
                sys.stdout.write(text)
            else:
                args.out.write_text(text, encoding="utf-8")
                print(
                    f"wrote {len(graph.nodes)} entities and {len(graph.edges)} relations to {args.out}",
                    file=sys.stderr,
                )
            return 0
        return _rebuild(settings, scope)
    except Mem0Error as exc:
        print(f"mem0-mcp graph: {exc}", file=sys.stderr)
        return 2


def _rebuild(settings: Settings, scope: Scope) -> int:
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.graph.rebuild import rebuild_graph

    memory = Memory(settings.model_copy(update={"graph_enabled": "true"}))
    try:
        graph = memory.graph
        if graph is None:  # graph_enabled was set above; a guard for the type, not a branch
            raise RuntimeError("graph memory did not open")

        def progress(done: int, total: int) -> None:
            print(f"\r{done}/{total} memories", end="", file=sys.stderr, flush=True)

        out = rebuild_graph(graph, scope, memory_pages(memory, scope), progress=progress)
    finally:
        memory.close()
    print(f"\nrebuilt: {json.dumps(out)}", file=sys.stderr)
    return 0 if not out["failed"] else 1


def memory_pages(memory: Memory, scope: Scope) -> Callable[[int], MemoryPage]:
    """The scope's memories a page at a time, from an offset (what ``rebuild_graph`` reads)."""

    def page(offset: int) -> MemoryPage:
        return memory.get_all(
            user_id=scope.user_id,
            agent_id=scope.agent_id,
            run_id=scope.run_id,
            limit=memory.settings.max_limit,
            offset=offset,
        )

    return page


def _no_embedder(texts: Sequence[str]) -> np.ndarray:
    raise RuntimeError("graph export does not embed")
