"""The hostile demo market: gates, sessions, CAPTCHAs, rate limits, faults and mirrors (docs/hostile-demo.md)."""
