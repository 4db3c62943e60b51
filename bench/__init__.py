"""Leitai's benchmark: `scripts/bench` (python -m bench). See docs/performance.md.

The issue asked for the two baseline servers "under scripts/bench/"; since
`scripts/bench` is the command itself, they live here: `bench/baseline_websockets.py`
and `bench/baseline_socketio.py`.
"""
