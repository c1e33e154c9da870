"""Round 8 of the blind outside-user review: four components written before reading the harness.

reconnect: a reconnecting client service; drain: a graceful drain coordinator; fanout: a pub/sub
fan-out with bounded per-subscriber buffers; stealing: a work-stealing pool of k lanes. Each module
holds the correct class and three buggy twins (see BUGS.md).
"""
