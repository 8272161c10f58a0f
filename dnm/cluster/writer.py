"""What the writer of a distributed crawl folds into the crawl's stats from its workers.

The writer files every page, so what it counts itself (pages stored, fill rates, raw captures, fetched
and parsed coverage) stays its own; what only the workers saw (responses, errors by class, barriers,
Tor, pages per type) is summed over them; discovered pages come from the shared sets, counted once.
"""

from __future__ import annotations

from typing import Any

from dnm.cluster.shared import SharedCrawl
from dnm.coverage import PREFIX

# Stats the writer keeps for itself: it files every page, so its counts are the crawl's.
WRITER_OWNS = (
    "dnm/stored/", "dnm/fill/", "dnm/warc/", "dnm/coverage/", "dnm/records/", "dnm/crawl", "dnm/run_report",
    "dnm/drift/", "dnm/cluster/", "item_", "elapsed_time_seconds", "start_time", "finish_", "log_count/",
    "memusage/",
)  # fmt: skip


def fold_worker_stats(stats: Any, shared: SharedCrawl) -> None:
    """Put the workers' counts into the writer's stats collector."""
    for page_type, count in shared.discovered_counts().items():
        stats.set_value(f"{PREFIX}{page_type}/discovered", count)
    per_worker = shared.worker_stats()
    totals: dict[str, float] = {}
    for values in per_worker.values():
        for key, value in values.items():
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and not key.startswith(WRITER_OWNS)
            ):
                totals[key] = totals.get(key, 0) + value
    for key, value in sorted(totals.items()):
        stats.set_value(key, value)
    info = shared.worker_info()
    stats.set_value(
        "dnm/cluster/workers",
        {
            worker: {
                "finish_reason": values.get("finish_reason", "lost"),
                "responses": values.get("response_received_count", 0),
                "handed_over": values.get("dnm/cluster/handed_over", 0),
                "released": values.get("dnm/cluster/released", 0),
                # Each worker checks the mirrors itself (the writer fetches nothing): what it found.
                "mirrors": values.get("dnm/mirrors"),
                "network_path": info.get(worker, {}).get("network_path"),
            }
            for worker, values in sorted(per_worker.items())
        },
    )
    stats.set_value("dnm/cluster/lost_workers", shared.lost_workers())
    reports = [values["dnm/mirrors"] for values in per_worker.values() if values.get("dnm/mirrors")]
    if reports:
        stats.set_value("dnm/mirrors", merged_mirrors(reports))


# A mirror's state over several workers: the most telling one any worker saw.
_STATE_WEIGHT = {"refused": 3, "down": 2, "trusted": 1, "unverified": 0}


def merged_mirrors(reports: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The workers' mirror reports as one (dnm.mirrors.MirrorPool.report's form): requests summed per mirror,
    a refusal or a down state kept, a mirror trusted when any worker verified its signed list."""
    merged: dict[str, dict[str, Any]] = {}
    for report in reports:
        for mirror in report:
            seen = merged.setdefault(mirror["url"], {**mirror, "ok": 0, "failed": 0})
            seen["ok"] += mirror.get("ok", 0)
            seen["failed"] += mirror.get("failed", 0)
            seen["refused"] = seen.get("refused") or mirror.get("refused")
            if _STATE_WEIGHT.get(mirror["state"], 0) > _STATE_WEIGHT.get(seen["state"], 0):
                seen["state"] = mirror["state"]
    return list(merged.values())
