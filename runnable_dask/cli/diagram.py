"""A plan's shape as text: Mermaid flowcharts and Graphviz DOT, from one small model.

Steps are boxes (stubs dashed), terminals are circles, composite steps are clusters
holding one cluster per branch (a map's or loop's single template branch included), and
on_failure routes are dashed edges (labelled when they lead to an on_failure pipeline
rather than to the fail terminal). Node ids are ``n0``, ``n1``, ... in plan order:
internal names hold dots, spaces and ``%``, which neither format accepts as ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runnable_dask.plan import Branch, Node, Plan

TERMINAL_KINDS = ("success", "fail")


@dataclass(slots=True)
class Box:
    """One step or terminal."""

    id: str
    label: str
    kind: str


@dataclass(slots=True)
class Cluster:
    """A composite step or one of its branches; ``anchor`` is a node inside it (for DOT)."""

    id: str
    label: str
    members: list[Box | Cluster] = field(default_factory=list)
    anchor: str = ""


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    on_failure: bool = False
    label: str = ""


@dataclass(slots=True)
class Diagram:
    members: list[Box | Cluster]
    edges: list[Edge]
    clusters: dict[str, Cluster]


def build_diagram(plan: Plan) -> Diagram:
    """Boxes, clusters and edges for every node of ``plan``, nested as the plan is."""
    ids = {node.internal_name: f"n{i}" for i, (_, node) in enumerate(plan.nodes())}
    diagram = Diagram(members=[], edges=[], clusters={})
    diagram.members = _members(plan.root, ids, diagram)
    return diagram


def _members(branch: Branch, ids: dict[str, str], diagram: Diagram) -> list[Box | Cluster]:
    members: list[Box | Cluster] = []
    for node in branch.nodes:
        own = ids[node.internal_name]
        if node.on_success:
            diagram.edges.append(Edge(own, ids[node.on_success]))
        if node.on_failure:  # labelled only when it leads to an on_failure pipeline
            to_fail = branch.terminals.get(node.on_failure) == "fail"
            label = "" if to_fail else "on failure"
            diagram.edges.append(Edge(own, ids[node.on_failure], on_failure=True, label=label))
        if not node.branches:
            members.append(Box(own, node.name, node.kind))
            continue
        cluster = Cluster(own, f"{node.name} ({node.kind})")
        for index, sub in enumerate(node.branches):
            inner = Cluster(f"{own}_b{index}", _branch_label(sub, node))
            inner.members = _members(sub, ids, diagram)
            inner.anchor = _first_box(inner.members)
            diagram.clusters[inner.id] = inner
            cluster.members.append(inner)
        cluster.anchor = _first_box(cluster.members)
        diagram.clusters[own] = cluster
        members.append(cluster)
    return members


def _branch_label(branch: Branch, node: Node) -> str:
    """A branch's key, or what the composite repeats over or chooses by."""
    step = node.step
    if node.kind == "map":
        return (
            f"for each {getattr(step, 'iterate_as', 'item')} in {getattr(step, 'iterate_on', '')}"
        )
    if node.kind == "loop":
        until, most = getattr(step, "break_on", "?"), getattr(step, "max_iterations", "?")
        return f"repeat until {until}, at most {most} times"
    key = branch.key or branch.internal_name.removeprefix(f"{node.internal_name}.")
    if node.kind == "conditional":
        return f"{getattr(step, 'parameter', '?')} == {key}"
    return key


def _first_box(members: list[Box | Cluster]) -> str:
    first = members[0]
    return first.id if isinstance(first, Box) else first.anchor


# --- Mermaid ----------------------------------------------------------------------------


def to_mermaid(diagram: Diagram) -> str:
    """A ``flowchart TD`` that GitHub, GitLab and mermaid.live render."""
    lines = ["flowchart TD"]
    _mermaid_members(diagram.members, lines, "    ")
    for edge in diagram.edges:
        arrow = " -.-> " if edge.on_failure else " --> "
        if edge.label:
            arrow = f"{arrow.rstrip()}|{_mermaid_text(edge.label)}| "
        lines.append(f"    {edge.source}{arrow}{edge.target}")
    lines += [
        "    classDef stub stroke-dasharray: 5 5",
        "    classDef success fill:#d4edda,stroke:#2e7d32",
        "    classDef fail fill:#f8d7da,stroke:#c62828",
    ]
    return "\n".join(lines) + "\n"


def _mermaid_members(members: list[Box | Cluster], lines: list[str], indent: str) -> None:
    for member in members:
        label = _mermaid_text(member.label)
        if isinstance(member, Cluster):
            lines.append(f'{indent}subgraph {member.id}["{label}"]')
            _mermaid_members(member.members, lines, indent + "    ")
            lines.append(f"{indent}end")
        elif member.kind in TERMINAL_KINDS:
            lines.append(f'{indent}{member.id}(("{label}")):::{member.kind}')
        elif member.kind == "stub":
            lines.append(f'{indent}{member.id}["{label}"]:::stub')
        else:
            lines.append(f'{indent}{member.id}["{label}"]')


def _mermaid_text(text: str) -> str:
    return text.replace("#", "#35;").replace('"', "#quot;")


# --- Graphviz DOT -----------------------------------------------------------------------


def to_dot(diagram: Diagram) -> str:
    """A ``digraph`` for Graphviz ``dot``; edges to a composite end at its cluster."""
    lines = [
        "digraph pipeline {",
        "    compound=true;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    _dot_members(diagram.members, lines, "    ")
    for edge in diagram.edges:
        attributes = []
        source, target = edge.source, edge.target
        if source in diagram.clusters:
            attributes.append(f"ltail=cluster_{source}")
            source = diagram.clusters[source].anchor
        if target in diagram.clusters:
            attributes.append(f"lhead=cluster_{target}")
            target = diagram.clusters[target].anchor
        if edge.on_failure:
            attributes.append("style=dashed")
        if edge.label:
            attributes.append(f'label="{_dot_text(edge.label)}"')
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"    {source} -> {target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_members(members: list[Box | Cluster], lines: list[str], indent: str) -> None:
    for member in members:
        label = _dot_text(member.label)
        if isinstance(member, Cluster):
            lines.append(f"{indent}subgraph cluster_{member.id} {{")
            lines.append(f'{indent}    label="{label}"; style=rounded;')
            _dot_members(member.members, lines, indent + "    ")
            lines.append(f"{indent}}}")
        elif member.kind in TERMINAL_KINDS:
            colour = "#2e7d32" if member.kind == "success" else "#c62828"
            lines.append(f'{indent}{member.id} [label="{label}", shape=circle, color="{colour}"];')
        elif member.kind == "stub":
            lines.append(f'{indent}{member.id} [label="{label}", style="rounded,dashed"];')
        else:
            lines.append(f'{indent}{member.id} [label="{label}"];')


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
