"""Server-side state behind `next` links, bounded by bytes as well as by count.

HAPI keeps the full match list of a search so that `_getpages` links work. Keeping it here as
Python lists cost ~40 bytes per match, and a client that runs many broad searches with
`_count=1` (each keeping every match for its next link) grew the server by hundreds of MB.
Matches are kept as packed 64-bit integers (8 bytes each) and the oldest searches are dropped
once either the count or the byte budget is exceeded, so memory stays bounded whatever the
clients do; a dropped search answers 410, as HAPI answers an expired one.
"""

from __future__ import annotations

import threading
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from medbench.fhir.errors import FhirError

MAX_PAGED_SEARCHES = 1000
MAX_PAGED_BYTES = 32 * 1024 * 1024
_ENTRY_OVERHEAD = 256  # bookkeeping bytes per kept search (object, key, dict slot), roughly


@dataclass(frozen=True)
class PagedSearch:
    """One kept search: its matches in order, page size, `_total` mode and the namespace whose
    writes it may show."""

    seqs: array
    count: int
    total_mode: str | None
    namespace: str = ""

    @property
    def cost(self) -> int:
        return self.seqs.itemsize * len(self.seqs) + _ENTRY_OVERHEAD


class PagedSearches:
    """The kept searches of one server, oldest dropped first (thread-safe)."""

    def __init__(self, max_searches: int = MAX_PAGED_SEARCHES, max_bytes: int = MAX_PAGED_BYTES) -> None:
        self.max_searches = max_searches
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, PagedSearch] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, seqs: Sequence[int], count: int, total_mode: str | None, namespace: str = "") -> str:
        """Keep a search and return its id for `_getpages` links. A single search larger than
        the whole budget is still kept (alone), so its own next link works."""
        search = PagedSearch(array("q", seqs), count, total_mode, namespace)
        search_id = str(uuid.uuid4())
        with self._lock:
            self._items[search_id] = search
            self._bytes += search.cost
            while len(self._items) > 1 and (len(self._items) > self.max_searches or self._bytes > self.max_bytes):
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.cost
        return search_id

    def get(self, search_id: str, namespace: str = "") -> PagedSearch:
        """The kept search, or 410 as HAPI answers an unknown or expired one (also when the
        search belongs to another write namespace)."""
        with self._lock:
            search = self._items.get(search_id)
        if search is None or search.namespace != namespace:
            raise FhirError(410, f'Search ID "{search_id}" does not exist and may have expired')
        return search

    @property
    def kept_bytes(self) -> int:
        """Bytes the kept searches account for (what the budget bounds)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
