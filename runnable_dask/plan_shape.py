"""Where each step of a plan sits: the branch around it, the composite around a branch.

Events name a step by its template in the plan (``sweep.%.train``) and the items that
fill it; this is what places such a step in the run log's tree, and what tells the
console which map or Parallel an item belongs to, without parsing names that may
contain dots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runnable_dask.plan import Plan, fill


@dataclass
class PlanShape:
    """Templates of nodes and branches, and what encloses each."""

    branch_of: dict[str, str] = field(default_factory=dict)
    """Node -> the branch it is in (``""``: the pipeline itself)."""
    composite_of: dict[str, str] = field(default_factory=dict)
    """Branch -> the composite step it belongs to."""
    type_of: dict[str, str] = field(default_factory=dict)
    parallel_branches: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, plan: Plan) -> PlanShape:
        shape = cls()
        for branch, node in plan.nodes():
            shape.branch_of[node.internal_name] = branch.internal_name
            shape.type_of[node.internal_name] = node.kind
            for sub in node.branches:
                shape.composite_of[sub.internal_name] = node.internal_name
            if node.kind == "parallel":
                shape.parallel_branches[node.internal_name] = [
                    b.internal_name for b in node.branches
                ]
        return shape

    def enclosing(self, template: str, items: tuple[str, ...]) -> tuple[str, ...]:
        """The internal names of the branches a step runs in, outermost first."""
        found = []
        branch = self.branch_of.get(template, "")
        while branch:
            found.append(fill(branch, items))
            branch = self.branch_of.get(self.composite_of[branch], "")
        return tuple(reversed(found))
