"""A scope's graph as a file: GraphML (yEd, Gephi, Cytoscape) or Graphviz DOT."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape as xml_escape

from mem0_mcp.models import GraphExport

_QUOTE = {'"': "&quot;"}


def to_graphml(graph: GraphExport) -> str:
    """The graph as a GraphML document; node and edge data as string keys."""
    keys = [("name", "node"), ("type", "node"), ("relation", "edge"), ("valid_from", "edge"),
            ("invalidated_at", "edge"), ("sources", "edge")]  # fmt: skip
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        *(f'  <key id="{k}" for="{kind}" attr.name="{k}" attr.type="string"/>' for k, kind in keys),
        '  <graph id="G" edgedefault="directed">',
    ]
    for n in graph.nodes:
        lines.append(f'    <node id="{xml_escape(n.id, _QUOTE)}">')
        lines.append(f'      <data key="name">{xml_escape(n.name)}</data>')
        lines.append(f'      <data key="type">{xml_escape(n.type)}</data>')
        lines.append("    </node>")
    for e in graph.edges:
        lines.append(
            f'    <edge id="{xml_escape(e.id, _QUOTE)}" source="{xml_escape(e.source_id, _QUOTE)}" '
            f'target="{xml_escape(e.destination_id, _QUOTE)}">'
        )
        data = (("relation", e.relation), ("valid_from", e.valid_from), ("invalidated_at", e.invalidated_at))
        for k, value in data:
            if value:
                lines.append(f'      <data key="{k}">{xml_escape(value)}</data>')
        lines.append(f'      <data key="sources">{xml_escape(",".join(e.sources))}</data>')
        lines.append("    </edge>")
    lines += ["  </graph>", "</graphml>", ""]
    return "\n".join(lines)


def to_dot(graph: GraphExport) -> str:
    """The graph as a Graphviz digraph; invalidated relations dashed and gray."""

    def q(text: str) -> str:
        return json.dumps(str(text), ensure_ascii=False)  # a JSON string is a valid DOT ID

    lines = ["digraph memory {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for n in graph.nodes:
        lines.append(f"  {q(n.id)} [label={q(n.name + ' (' + n.type + ')')}];")
    for e in graph.edges:
        style = ", style=dashed, color=gray" if e.invalidated_at else ""
        lines.append(f"  {q(e.source_id)} -> {q(e.destination_id)} [label={q(e.relation)}{style}];")
    lines += ["}", ""]
    return "\n".join(lines)
