"""The disk's fsync latency where the benchmarks keep their data (/tmp): 1,000
appends of 4 KiB, each followed by fdatasync. One JSON line."""
import json
import os
import tempfile
import time

fd, path = tempfile.mkstemp(dir=os.environ.get("TMPDIR", "/tmp"))
try:
    block, samples = b"x" * 4096, []
    for i in range(1000):
        os.pwrite(fd, block, i * 4096)
        start = time.perf_counter()
        os.fdatasync(fd)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    print(json.dumps({"fsync": "fdatasync after a 4 KiB append", "n": len(samples),
                      "p50_ms": round(samples[len(samples) // 2], 3), "p99_ms": round(samples[990], 3)}))
finally:
    os.close(fd)
    os.unlink(path)
