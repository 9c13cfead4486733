"""Bounded, idle-expiring caches for loaded models, and the thread that expires them.

Pure Python: the loader and the unload hook are injected, and so is the clock,
so eviction order and idle expiry are testable without any model.
"""

import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Dict, Generic, Hashable, Iterator, List, Optional, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Clock = Callable[[], float]


class _Entry(Generic[V]):
    __slots__ = ("value", "in_use", "last_used")

    def __init__(self, value: V, last_used: float):
        self.value = value
        self.in_use = 0
        self.last_used = last_used


class ModelCache(Generic[K, V]):
    """A least-recently-used cache of at most ``max_entries`` loaded models.

    Callers borrow a model with ``lease(key)``; a leased model is never evicted, so
    an unload cannot pull a model out from under a running request. A model becomes
    idle when its last lease ends; ``evict_idle()`` drops those idle for at least
    ``idle_timeout_s`` seconds (by the injected clock).

    When a new key must be loaded and the cache is full, the least recently used
    idle entry is dropped *before* the loader runs, so accelerator memory never holds
    more than ``max_entries`` models at once. If every entry is leased the cache
    grows past its bound for that moment rather than fail the request.

    ``on_evict(key)`` runs after the cache has dropped its reference to the model,
    which is the point where freeing accelerator memory (gc, ``torch.cuda.empty_cache``)
    can actually release it.
    """

    def __init__(
        self,
        loader: Callable[[K], V],
        max_entries: int,
        idle_timeout_s: float = 0.0,
        clock: Clock = time.monotonic,
        on_evict: Optional[Callable[[K], None]] = None,
    ):
        """
        Args:
            loader: builds the model for a key; may raise, in which case nothing is cached.
            max_entries: bound on loaded models (>= 1).
            idle_timeout_s: seconds after the last use at which a model counts as idle;
                0 or less disables idle eviction.
            clock: monotonic time source in seconds.
            on_evict: called with each evicted key, outside the cache's lock.

        Raises:
            ValueError: max_entries < 1.
        """
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._loader = loader
        self._max_entries = max_entries
        self._idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._on_evict = on_evict
        self._entries: "OrderedDict[K, _Entry[V]]" = OrderedDict()
        self._load_counts: Dict[K, int] = {}
        # Bookkeeping lock, held only for dictionary updates so health checks stay fast.
        self._lock = threading.Lock()
        # Serialises loads: two requests for the same missing model must load it once.
        self._load_lock = threading.Lock()

    @contextmanager
    def lease(self, key: K) -> Iterator[V]:
        """Borrow the model for ``key``, loading it first when absent.

        Raises whatever the loader raises; the failed key is not cached.
        """
        value = self._acquire(key)
        try:
            yield value
        finally:
            self._release(key)

    def keys(self) -> List[K]:
        """Loaded keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def load_count(self, key: K) -> int:
        """How many times the loader has run for ``key`` since the cache was made."""
        with self._lock:
            return self._load_counts.get(key, 0)

    def evict_idle(self, now: Optional[float] = None) -> List[K]:
        """Drop every unleased entry idle for at least ``idle_timeout_s`` seconds.

        Returns the evicted keys (empty when idle eviction is disabled).
        """
        if self._idle_timeout_s <= 0:
            return []
        now = self._clock() if now is None else now
        with self._lock:
            victims = [
                key
                for key, entry in self._entries.items()
                if entry.in_use == 0 and now - entry.last_used >= self._idle_timeout_s
            ]
            for key in victims:
                del self._entries[key]
        self._notify(victims)
        return victims

    def clear(self) -> List[K]:
        """Drop every unleased entry; returns the evicted keys."""
        with self._lock:
            victims = [key for key, entry in self._entries.items() if entry.in_use == 0]
            for key in victims:
                del self._entries[key]
        self._notify(victims)
        return victims

    def _acquire(self, key: K) -> V:
        with self._load_lock:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.in_use += 1
                    entry.last_used = self._clock()
                    self._entries.move_to_end(key)
                    return entry.value
                victims = self._make_room()
            self._notify(victims)
            value = self._loader(key)
            with self._lock:
                entry = _Entry(value, self._clock())
                entry.in_use = 1
                self._entries[key] = entry
                self._load_counts[key] = self._load_counts.get(key, 0) + 1
            return value

    def _release(self, key: K) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.in_use -= 1
                # Idle time counts from the end of the last use, not its start, so a
                # long transcription does not make its model look idle.
                entry.last_used = self._clock()

    def _make_room(self) -> List[K]:
        victims = []
        for key in list(self._entries):
            if len(self._entries) < self._max_entries:
                break
            if self._entries[key].in_use == 0:
                del self._entries[key]
                victims.append(key)
        return victims

    def _notify(self, victims: Sequence[K]) -> None:
        if self._on_evict is not None:
            for key in victims:
                self._on_evict(key)


class IdleReaper:
    """A daemon thread that calls ``sweep()`` every ``interval_s`` seconds.

    ``sweep`` is the owner's idle-eviction routine; exceptions in it are reported
    through ``on_error`` and do not stop the thread.
    """

    def __init__(
        self,
        sweep: Callable[[], object],
        interval_s: float,
        on_error: Optional[Callable[[BaseException], None]] = None,
    ):
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._sweep = sweep
        self._interval_s = interval_s
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="model-idle-reaper", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._sweep()
            except Exception as error:  # noqa: BLE001 - one failed sweep must not end unloading
                if self._on_error is not None:
                    self._on_error(error)


def reaper_interval(idle_timeout_s: float) -> float:
    """How often to sweep for a given idle timeout (seconds): often enough that a model
    outlives its timeout by at most half of it, capped at 30 s."""
    return max(0.5, min(30.0, idle_timeout_s / 2))
