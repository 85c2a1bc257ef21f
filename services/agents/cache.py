"""ResolvePrompt's cache: per organization and agent type, what it reads from the
configuration tables (the live experiment with its variants' prompts and weights, the
default variant, the active configuration), kept in this process.

Invalidation across processes is a **version counter read in the same transaction**:
every write to agent_configurations, prompt_variants, experiments or experiment_variants
bumps the organization's row of `agent_revisions` (a statement trigger, in the writing
transaction: migrations/versions/0009). ResolvePrompt reads that revision in the same
statement as the client's assignment, its one round trip besides BEGIN and COMMIT; an
entry filled at another revision is reloaded. So no process ever serves a plan older than
the last committed change it could see, with no extra connection, no missed
notifications and no window after a commit (LISTEN/NOTIFY would spare that one statement
but could serve a stale plan until the notification arrives, or forever after a lost
one). The revision is read before the plan, so a plan newer than its revision can be
cached, never an older one: the next call reloads it.

Assignments are not cached: the one statement reads the assignment with the revision.
Bounded: the least recently used entries go beyond `max_entries`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from uuid import UUID

from services.agents.domain import Plan


@dataclass(frozen=True, slots=True)
class CachedPlan:
    revision: int
    plan: Plan


class PlanCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[tuple[UUID, str], CachedPlan] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.misses = 0  # no entry, or one filled at another revision

    def get(self, organization_id: UUID, agent_type: str) -> CachedPlan | None:
        entry = self._entries.get((organization_id, agent_type))
        if entry is not None:
            self._entries.move_to_end((organization_id, agent_type))
        return entry

    def put(self, organization_id: UUID, agent_type: str, revision: int, plan: Plan) -> None:
        key = (organization_id, agent_type)
        self._entries[key] = CachedPlan(revision, plan)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def count(self, fresh: bool) -> None:
        if fresh:
            self.hits += 1
        else:
            self.misses += 1

    def __len__(self) -> int:
        return len(self._entries)
