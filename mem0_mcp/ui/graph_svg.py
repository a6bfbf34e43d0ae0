"""A scope's graph drawn on the server as SVG: no script, so the page and the exported HTML file
show it without fetching anything. A small force layout (Fruchterman-Reingold), seeded so the
same graph is drawn the same way every time."""

from __future__ import annotations

from html import escape

import numpy as np

from mem0_mcp.models import GraphExport

WIDTH = 1000
HEIGHT = 640
_MARGIN = 70
# Dark enough for white outlines and distinct from each other.
_PALETTE = ("#4263EB", "#F76707", "#2F9E44", "#AE3EC9", "#1098AD", "#E03131", "#5C940D", "#495057")


def legend(graph: GraphExport) -> list[tuple[str, str]]:
    """(type, colour) of every entity type in the graph, by name: types in one graph never share
    a colour unless there are more than eight of them."""
    kinds = sorted({n.type for n in graph.nodes})
    return [(kind, _PALETTE[i % len(_PALETTE)]) for i, kind in enumerate(kinds)]


def layout(n: int, edges: list[tuple[int, int]], iterations: int = 300) -> np.ndarray:
    """Positions (n x 2) in [0, 1]² for n nodes joined by ``edges``: linked nodes pull together,
    all nodes push apart, and the steps cool down so the drawing settles."""
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.full((1, 2), 0.5)
    rng = np.random.default_rng(7)
    pos = rng.random((n, 2))
    k = 1.0 / np.sqrt(n)  # the ideal distance between nodes
    src = np.array([a for a, _ in edges], dtype=int)
    dst = np.array([b for _, b in edges], dtype=int)
    step = 0.1
    for _ in range(iterations if n <= 300 else 60):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=2), 1e-3)
        move = ((k * k / dist**2)[:, :, None] * delta).sum(axis=1)  # repulsion
        if len(src):
            d = pos[src] - pos[dst]
            pull = (np.linalg.norm(d, axis=1, keepdims=True) / k) * d
            np.add.at(move, src, -pull)
            np.add.at(move, dst, pull)
        length = np.maximum(np.linalg.norm(move, axis=1, keepdims=True), 1e-9)
        pos += move / length * np.minimum(length, step)
        step = max(step * 0.985, 0.002)
    # One scale for both axes (the drawing keeps its shape), centred.
    pos -= pos.min(axis=0)
    span = float(pos.max()) or 1.0
    pos /= span
    return pos + (1.0 - pos.max(axis=0)) / 2


def to_svg(graph: GraphExport) -> str:
    """The graph as one <svg> element: nodes coloured by type, relations as labelled arrows,
    invalidated relations dashed and grey; hovering shows names and dates."""
    index = {node.id: i for i, node in enumerate(graph.nodes)}
    colour = dict(legend(graph))
    edges = [e for e in graph.edges if e.source_id in index and e.destination_id in index]
    pairs = [(index[e.source_id], index[e.destination_id]) for e in edges]
    unit = layout(len(graph.nodes), pairs)
    xy = _MARGIN + unit * np.array([WIDTH - 2 * _MARGIN, HEIGHT - 2 * _MARGIN])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="graph" '
        'role="img" aria-label="entity graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="24" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#667"/>'
        "</marker></defs>",
    ]
    for e in edges:
        (x1, y1), (x2, y2) = xy[index[e.source_id]], xy[index[e.destination_id]]
        dead = e.invalidated_at is not None
        style = 'stroke="#aab" stroke-dasharray="5 4"' if dead else 'stroke="#667"'
        when = f"invalidated {e.invalidated_at}" if dead else f"since {e.valid_from}"
        out.append(
            f'<g class="edge"><title>{escape(e.source)} {escape(e.relation)} {escape(e.destination)} '
            f'({escape(when)})</title><line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'{style} stroke-width="1.5" marker-end="url(#arrow)"/>'
            f'<text x="{(x1 + x2) / 2:.1f}" y="{(y1 + y2) / 2 - 4:.1f}" text-anchor="middle" '
            f'font-size="12" fill="{"#99a" if dead else "#445"}">{escape(e.relation)}</text></g>'
        )
    for node in graph.nodes:
        x, y = xy[index[node.id]]
        out.append(
            f'<g class="node"><title>{escape(node.name)} ({escape(node.type)})</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="14" fill="{colour[node.type]}" stroke="#fff" '
            f'stroke-width="2"/><text x="{x:.1f}" y="{y + 30:.1f}" text-anchor="middle" font-size="13" '
            f'font-weight="600" fill="#223">{escape(node.name)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)


def to_html(graph: GraphExport, title: str | None = None) -> str:
    """A self-contained HTML file showing the graph (no script, no request to anywhere)."""
    scope = ", ".join(f"{k}={v}" for k, v in graph.scope.items()) or "all scopes"
    heading = escape(title or f"Memory graph of {scope}")
    keys = "".join(
        f'<li><span style="background:{colour}"></span>{escape(kind)}</li>' for kind, colour in legend(graph)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{heading}</title><style>{GRAPH_CSS}</style></head><body>"
        f"<h1>{heading}</h1><p>{len(graph.nodes)} entities, {len(graph.edges)} relations "
        "(dashed: invalidated by a later fact).</p>"
        f'<ul class="legend">{keys}</ul>{to_svg(graph)}</body></html>\n'
    )


GRAPH_CSS = (
    "body{font:14px system-ui,sans-serif;margin:1.5rem;color:#223}"
    "svg.graph{width:100%;max-width:1000px;height:auto;border:1px solid #dde;border-radius:8px;"
    "background:#fcfcfe}"
    ".legend{list-style:none;padding:0;display:flex;gap:1rem;flex-wrap:wrap}"
    ".legend span{display:inline-block;width:.8rem;height:.8rem;border-radius:50%;margin-right:.3rem}"
)
