"""The nightly scheduler (`dnm schedule`): per-market cron slots, one crawl process per run, history.

`config` reads and checks the schedule file; `timing` decides, from the cron expression, the clock and
the market's last recorded slot, whether a slot is due, late (the missed-run policy) or done; `lock`
holds a market's crawl lock (taken by `dnm crawl` itself); `runner` is the scheduler loop that starts
`dnm crawl` processes and writes `scheduled_runs` (models/schedule.py); `install` writes systemd units
or a crontab line for those who let the system scheduler start it. docs/operations.md, "Scheduling".
"""
