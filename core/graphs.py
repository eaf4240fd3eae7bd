"""Graph utilities shared by the torch graph, the NIR compiler and the mapping checks.

:func:`graph_order` is the one definition of evaluation order and back edges;
:func:`inline_graph` the one inliner of nested graphs.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from spikeloop.core.errors import NIRValidationError

def graph_order(node_names: Sequence[str], edges: Sequence[tuple[str, str]],
                input_name: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Evaluation order and back edges of a graph; the one definition torch and Lava share.

    Back edges are found by a depth-first search from ``input_name`` that follows each
    node's outgoing edges in the order they appear in ``edges``: an edge into a node
    that is still on the DFS stack closes a cycle and is a back edge (self-loops
    included). Back edges carry the source's output of the previous timestep.

    ``order`` is the reverse post-order of that search: a topological order of the
    remaining (forward) edges, ``input_name`` first, that depends on the edges and their
    order only (NIR files keep edge order but not node order). ``back_edges`` keeps the
    order of ``edges``.

    Raises ``ValueError`` naming the fault for an edge to an unknown node, a duplicate
    edge, an edge into the input, or a node the input does not reach.
    """
    names = list(node_names)
    known = set(names)
    if input_name not in known:
        raise ValueError(f"input node {input_name!r} is not among the nodes {names}")
    seen_edges = set()
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        for end in (a, b):
            if end not in known:
                raise ValueError(f"edge ({a!r}, {b!r}) names node {end!r}, which does not exist; "
                                 f"nodes: {names}")
        if (a, b) in seen_edges:
            raise ValueError(f"duplicate edge ({a!r}, {b!r})")
        if b == input_name:
            raise ValueError(f"edge ({a!r}, {b!r}) leads into the input node {input_name!r}")
        seen_edges.add((a, b))
        succ[a].append(b)

    back: set[tuple[str, str]] = set()
    post: list[str] = []
    state = dict.fromkeys(names, 0)  # 0 unvisited, 1 on the DFS stack, 2 done
    state[input_name] = 1
    stack = [(input_name, iter(succ[input_name]))]
    while stack:  # iterative DFS: deep graphs must not hit Python's recursion limit
        node, it = stack[-1]
        for nxt in it:
            if state[nxt] == 1:
                back.add((node, nxt))
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
                break
        else:
            state[node] = 2
            post.append(node)
            stack.pop()
    unreached = [n for n in names if state[n] == 0]
    if unreached:
        raise ValueError(f"nodes {unreached} are not reachable from the input {input_name!r}")

    order = post[::-1]
    return order, [e for e in edges if tuple(e) in back]


Subgraph = Callable[[Any], "tuple[dict, list, list[str], list[str]] | None"]


def inline_graph(nodes: dict, edges: Sequence[tuple[str, str]], subgraph: Subgraph,
                 source: str = "graph", virtual: Sequence[str] = ()) -> tuple[dict, list]:
    """Inline nested graphs; return ``(nodes, edges)`` with only leaf nodes.

    ``subgraph(node)`` returns ``None`` for a leaf, or the nested graph as ``(nodes,
    edges, input_names, output_names)`` (its own Input/Output nodes named among its
    nodes or, for a torch graph, virtual). Inner nodes are named ``sub.node``. An
    edge into (out of) ``sub`` goes to the successors of its input (the predecessors of
    its output); with several inputs or outputs the edge names one: ``sub.<io>``.
    ``virtual`` names endpoints that edges may use without being nodes (a torch
    graph's input and output).
    """
    flat: dict = {}
    out_edges: list = []
    entry: dict = {}  # (subgraph, io name or None) -> inner successors of that input
    exit_: dict = {}  # (subgraph, io name or None) -> inner predecessors of that output
    for name, node in nodes.items():
        inner = subgraph(node)
        if inner is None:
            flat[name] = node
            continue
        sub_nodes, sub_edges, ins, outs = inner
        inner_nodes, inner_edges = inline_graph(sub_nodes, sub_edges, subgraph,
                                                f"{source}: subgraph {name!r}", virtual=(*ins, *outs))
        io = set(ins) | set(outs)
        flat.update({f"{name}.{k}": v for k, v in inner_nodes.items() if k not in io})
        out_edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in inner_edges if a not in ins and b not in outs]
        for i in ins:
            entry[(name, i)] = [f"{name}.{b}" for a, b in inner_edges if a == i]
        for o in outs:
            exit_[(name, o)] = [f"{name}.{a}" for a, b in inner_edges if b == o]
        if len(ins) == 1:
            entry[(name, None)] = entry[(name, ins[0])]
        if len(outs) == 1:
            exit_[(name, None)] = exit_[(name, outs[0])]

    def ends(ref: str, table: dict, what: str) -> list[str]:
        if ref in flat or ref in virtual:
            return [ref]
        sub, _, io = ref.partition(".")
        if (sub, io or None) in table:
            return table[(sub, io or None)]
        if any(k[0] == sub for k in table):
            raise NIRValidationError(f"{source}: edge {what} {ref!r}: subgraph {sub!r} has several "
                                     f"{'inputs' if table is entry else 'outputs'}; name one as '{sub}.<node>'")
        raise NIRValidationError(f"{source}: an edge names node {ref!r}, which does not exist")

    for a, b in edges:
        out_edges += [(x, y) for x in ends(a, exit_, "from") for y in ends(b, entry, "to")]
    return flat, out_edges
