"""Faults that must neither lose nor fake data (issue 11, the store's half): two
servers on one DATA_DIR, a Redis that cannot write (out of memory), a Redis
whose state was lost or is foreign, a Redis without persistence."""

import os
import subprocess
import sys

import httpx
from conftest import ROOT, Clients, create_show


async def test_a_second_server_on_the_same_data_dir_refuses_to_start(fresh_server):
    first = fresh_server()
    slug = create_show(first.url)
    env = {**first.env, "PORT": "0"}
    second = subprocess.run(
        [sys.executable, "-m", "server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert second.returncode != 0
    assert "is in use by another Leitai server" in second.stderr and f"pid {first.proc.pid}" in second.stderr
    assert "Uvicorn running" not in second.stdout + second.stderr
    # the first one is untouched and serves on
    assert first.proc.poll() is None
    assert httpx.get(f"{first.url}/readyz").text == "ready"
    made = Clients(first)
    try:
        phone = await made.audience(slug)
        assert (await phone.request({"type": "ask", "text": "还在吗"}))["question"] == "q1"
    finally:
        await made.close()
    # and once it is gone the lock goes with it (kill -9 too): a restart is never blocked
    first.kill()
    first.start()
    assert httpx.get(f"{first.url}/readyz").status_code == 200


def test_the_lock_is_per_data_dir(fresh_server, tmp_path):
    first = fresh_server()
    other = fresh_server(DATA_DIR=str(tmp_path))  # another DATA_DIR beside it starts
    assert first.proc.poll() is None and other.proc.poll() is None
    assert os.path.exists(tmp_path / "leitai.lock")
