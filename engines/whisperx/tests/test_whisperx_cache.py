"""ModelCache and IdleReaper with fake loaders and a fake clock."""

import threading
import time

import pytest

from whisperx_service.cache import IdleReaper, ModelCache, reaper_interval


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Loader:
    """Counts loads and tracks how many models are resident, as GPU memory would."""

    def __init__(self):
        self.loads = []
        self.resident = set()
        self.peak = 0
        self.fail = set()

    def __call__(self, key):
        if key in self.fail:
            raise RuntimeError(f"cannot load {key}")
        self.loads.append(key)
        self.resident.add(key)
        self.peak = max(self.peak, len(self.resident))
        return f"model:{key}"

    def evicted(self, key):
        self.resident.discard(key)


def make_cache(max_entries=2, idle=60.0, clock=None):
    loader = Loader()
    cache = ModelCache(loader, max_entries, idle, clock or FakeClock(), on_evict=loader.evicted)
    return cache, loader


def use(cache, key):
    with cache.lease(key) as value:
        return value


def test_loads_once_and_reuses():
    cache, loader = make_cache()

    assert use(cache, "tiny") == "model:tiny"
    assert use(cache, "tiny") == "model:tiny"

    assert loader.loads == ["tiny"]
    assert cache.load_count("tiny") == 1
    assert cache.load_count("base") == 0


def test_evicts_least_recently_used_before_loading():
    cache, loader = make_cache(max_entries=2)

    for key in ("tiny", "base", "tiny", "small"):
        use(cache, key)

    assert cache.keys() == ["tiny", "small"]
    assert loader.resident == {"tiny", "small"}
    # The victim was unloaded before the new model loaded: never three at once.
    assert loader.peak == 2
    use(cache, "base")
    assert cache.load_count("base") == 2
    assert cache.keys() == ["small", "base"]


def test_leased_model_is_not_evicted_and_cache_overflows_briefly():
    cache, loader = make_cache(max_entries=1)

    with cache.lease("large-v3"):
        assert use(cache, "tiny") == "model:tiny"
        assert set(cache.keys()) == {"large-v3", "tiny"}
    # The next load makes room again.
    use(cache, "base")
    assert cache.keys() == ["base"]


def test_idle_models_unload_after_timeout_counted_from_last_use():
    clock = FakeClock()
    cache, loader = make_cache(max_entries=3, idle=60.0, clock=clock)

    use(cache, "tiny")
    clock.advance(30)
    use(cache, "base")
    clock.advance(30)

    assert cache.evict_idle() == ["tiny"]
    assert cache.keys() == ["base"]
    assert loader.resident == {"base"}
    clock.advance(29.9)
    assert cache.evict_idle() == []
    clock.advance(0.1)
    assert cache.evict_idle() == ["base"]
    # Loading again after an unload counts as a new load.
    use(cache, "tiny")
    assert cache.load_count("tiny") == 2


def test_long_lease_does_not_look_idle():
    clock = FakeClock()
    cache, _ = make_cache(idle=60.0, clock=clock)

    with cache.lease("large-v2"):
        clock.advance(600)
        assert cache.evict_idle() == []
    clock.advance(59)
    assert cache.evict_idle() == []
    clock.advance(1)
    assert cache.evict_idle() == ["large-v2"]


def test_idle_timeout_zero_keeps_models():
    clock = FakeClock()
    cache, _ = make_cache(idle=0, clock=clock)
    use(cache, "tiny")
    clock.advance(10 ** 6)

    assert cache.evict_idle() == []
    assert cache.keys() == ["tiny"]


def test_failed_load_caches_nothing():
    cache, loader = make_cache()
    loader.fail.add("medium")

    with pytest.raises(RuntimeError, match="cannot load medium"):
        use(cache, "medium")

    assert cache.keys() == []
    assert cache.load_count("medium") == 0
    loader.fail.clear()
    assert use(cache, "medium") == "model:medium"


def test_concurrent_requests_for_one_model_load_it_once():
    release = threading.Event()
    loads = []

    def slow_loader(key):
        loads.append(key)
        release.wait(2)
        return key

    cache = ModelCache(slow_loader, 2)
    results = []
    threads = [threading.Thread(target=lambda: results.append(use(cache, "small"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(2)

    assert results == ["small"] * 4
    assert loads == ["small"]


def test_clear_unloads_everything_not_leased():
    cache, loader = make_cache()
    use(cache, "tiny")
    with cache.lease("base"):
        assert cache.clear() == ["tiny"]
    assert cache.keys() == ["base"]


def test_max_entries_must_be_positive():
    with pytest.raises(ValueError):
        ModelCache(lambda key: key, 0)


def test_reaper_sweeps_until_stopped():
    sweeps = threading.Semaphore(0)
    errors = []

    def sweep():
        sweeps.release()
        raise RuntimeError("one bad sweep")

    reaper = IdleReaper(sweep, 0.01, on_error=errors.append)
    reaper.start()
    try:
        assert sweeps.acquire(timeout=2)
        assert sweeps.acquire(timeout=2), "a failing sweep must not stop the reaper"
    finally:
        reaper.stop()
    assert errors and isinstance(errors[0], RuntimeError)


def test_reaper_interval_bounds():
    assert reaper_interval(300) == 30.0
    assert reaper_interval(10) == 5.0
    assert reaper_interval(0.1) == 0.5
