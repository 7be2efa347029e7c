"""The Arrow memory pool the data steps allocate from.

pyarrow's default pool on Linux and macOS is mimalloc, which hands freed pages back to the
operating system after 10 ms. A step that reads, types and writes a large partition frees and
allocates hundreds of megabytes in turn, so with mimalloc most of its allocations fault fresh
pages in again: on the 1M-row landing -> raw benchmark that kernel time was half of the read and
of the typing (bench/SPEED.md). jemalloc (Arrow's own build, returning pages after about a
second) keeps them for the next allocation.
"""

import functools


@functools.cache
def use_reusing_pool() -> str:
    """Make jemalloc the process's default Arrow pool when the default is mimalloc; the pool's name.

    Once per process (buffers remember their own pool, so switching never frees across pools).
    A pool chosen otherwise (`ARROW_DEFAULT_MEMORY_POOL=system`, or a build without jemalloc)
    stays as it is.
    """
    import pyarrow as pa

    current = pa.default_memory_pool()
    if current.backend_name != "mimalloc":
        return current.backend_name
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return current.backend_name
    pa.set_memory_pool(pool)
    return pool.backend_name
