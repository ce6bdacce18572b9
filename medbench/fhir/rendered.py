"""Pretty texts of base resources, kept between requests so a searchset is assembled, not re-rendered.

Parsing a stored resource and rendering it in HAPI's layout is most of what a search costs,
and the same resources are served again and again: the grader reads what the agent just read,
and concurrent attempts on one patient share them. The base data never changes while a server
runs, so a base resource's text (`bundle.render_entry_resource`) can be kept by its sequence
number. POSTed resources are never kept (they belong to one namespace and can be dropped).
Bounded by bytes; the least recently used texts go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

# (resource type, id, entry text)
EntryText = tuple[str, str, str]

MAX_RENDERED_BYTES = 32 * 1024 * 1024
_ENTRY_OVERHEAD = 160  # bytes of bookkeeping per kept text (key, tuple, dict slot), roughly


class RenderedEntries:
    """A byte-bounded LRU of entry texts by sequence number; thread-safe."""

    def __init__(self, max_bytes: int = MAX_RENDERED_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._texts: OrderedDict[int, EntryText] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._texts)

    def lookup(self, seqs: Iterable[int]) -> dict[int, EntryText]:
        """The kept texts among `seqs` (each found one becomes the most recently used)."""
        found: dict[int, EntryText] = {}
        with self._lock:
            for seq in seqs:
                entry = self._texts.get(seq)
                if entry is not None:
                    self._texts.move_to_end(seq)
                    found[seq] = entry
        return found

    def keep(self, seq: int, entry: EntryText) -> None:
        """Keep one base resource's text, dropping the least recently used beyond the budget."""
        cost = _cost(entry)
        if cost > self.max_bytes:
            return
        with self._lock:
            old = self._texts.pop(seq, None)
            if old is not None:
                self.bytes -= _cost(old)
            self._texts[seq] = entry
            self.bytes += cost
            while self.bytes > self.max_bytes:
                _, dropped = self._texts.popitem(last=False)
                self.bytes -= _cost(dropped)


def _cost(entry: EntryText) -> int:
    return len(entry[2]) + len(entry[1]) + _ENTRY_OVERHEAD
