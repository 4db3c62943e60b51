"""High availability with real Redis processes: a Sentinel failover mid-show, and a
show served by two processes through a three-master Redis Cluster."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import redis
from conftest import Clients, _free_port, create_show, need_redis, wait_until

pytestmark = pytest.mark.redis


class Procs:
    """redis-server processes of one test, each on a free port, stopped by pid at the end."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="leitai-ha-"))
        self.procs: dict[int, subprocess.Popen] = {}

    def start(self, *args: str, conf: str = "") -> int:
        port = _free_port()
        work = self.dir / str(port)
        work.mkdir()
        cmd = ["redis-server"]
        if conf:  # sentinel rewrites its config file: give it its own
            path = work / "redis.conf"
            path.write_text(conf.replace("PORT", str(port)).replace("DIR", str(work)))
            cmd.append(str(path))
        cmd += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(work), *args]
        self.procs[port] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    return port
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait()

    def cleanup(self) -> None:
        for port in list(self.procs):
            self.kill(port)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def procs():
    need_redis()
    made = Procs()
    yield made
    made.cleanup()


SENTINEL = """port PORT
bind 127.0.0.1
dir DIR
sentinel monitor mymaster 127.0.0.1 MASTER 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 5000
sentinel parallel-syncs mymaster 1
"""


def _replication(port: int) -> dict:
    return redis.Redis(port=port).info("replication")


async def test_sentinel_failover_mid_show_loses_nothing_acknowledged(procs, fresh_server):
    """The master is killed mid-show: writes are refused `unavailable` (never dropped
    silently) until the sentinels promote the replica, then go on there; every vote,
    question, approval and like acknowledged before the kill is on the new master
    (REDIS_WAIT_REPLICAS=1: an acked write is on a replica before it is acked; with two
    replicas, the promoted one has every write the other may have, and the other follows
    the new master, so writes can be acknowledged again)."""
    started = time.monotonic()
    durable = ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec")
    master = procs.start(*durable)
    # two replicas: after the failover one is left to WAIT for
    replicas = [procs.start(*durable, "--replicaof", "127.0.0.1", str(master)) for _ in range(2)]
    for replica in replicas:
        await wait_until(lambda r=replica: _replication(r).get("master_link_status") == "up", timeout=10)
    sentinels = [procs.start("--sentinel", conf=SENTINEL.replace("MASTER", str(master))) for _ in range(3)]

    def quorum() -> bool:
        try:
            s = redis.Redis(port=sentinels[0])
            known = {r["port"] for r in s.sentinel_slaves("mymaster")}
            return bool(s.execute_command("SENTINEL", "CKQUORUM", "mymaster")) and known == set(replicas)
        except redis.ResponseError:
            return False

    await wait_until(quorum, timeout=15, interval=0.1)
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in sentinels) + "/mymaster/0"
    srv = fresh_server(REDIS_URL=url, REDIS_WAIT_REPLICAS="1", VIEWER_TTL_S="2", LIKE_BURST="1000")
    slug = create_show(srv.url)
    made = Clients(srv)
    try:
        console = await made.console(slug)
        overlay = await made.overlay(slug)
        phone = await made.audience(slug)
        assert (await console.request({"type": "round.start", "topic": "哨兵", "duration_s": 300}))["type"] == "ack"
        await phone.wait_type("round")
        assert (await phone.request({"type": "vote", "side": "b"}))["type"] == "ack"
        qid = (await phone.request({"type": "ask", "text": "主库挂了还在吗"}))["question"]
        assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
        await phone.send({"type": "like", "side": "a", "count": 40})
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] == 40)

        # a write no replica has taken is not acknowledged
        for replica in replicas:
            os.kill(procs.procs[replica].pid, signal.SIGSTOP)
        try:
            unsure = await phone.request({"type": "vote", "side": "a"})
        finally:
            for replica in replicas:
                os.kill(procs.procs[replica].pid, signal.SIGCONT)
        assert unsure["type"] == "error" and unsure["code"] == "unavailable", unsure

        procs.kill(master)
        # until a replica is promoted, an acknowledged write is refused, never half-done
        refused = await phone.request({"type": "ask", "text": "切换中"})
        assert refused["type"] == "error" and refused["code"] == "unavailable", refused

        async def writes_again() -> bool:
            reply = await phone.request({"type": "vote", "side": "a"})
            return reply["type"] == "ack"

        await wait_until(writes_again, timeout=30, interval=0.2)
        promoted = redis.Redis(port=sentinels[0]).sentinel_get_master_addr_by_name("mymaster")
        assert int(promoted[1]) in replicas
        await wait_until(lambda: httpx.get(f"{srv.url}/readyz").status_code == 200, timeout=10)

        fresh = await made.console(slug)
        show = fresh.frames[0]["show"]
        assert [q["text"] for q in show["questions"]] == ["主库挂了还在吗"]  # the refused one is nowhere
        assert show["questions"][0]["status"] == "approved"
        assert show["tally"]["votes"] == {"a": 1, "b": 0}  # the vote, changed on the new master
        assert show["tally"]["likes"]["a"] >= 40
        await phone.send({"type": "like", "side": "a", "count": 2})
        await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["a"] >= 42, timeout=10)
    finally:
        await made.close()
    assert time.monotonic() - started < 60


async def test_a_show_through_two_processes_on_a_redis_cluster(procs, fresh_server):
    """Three masters; the show's keys share its hash tag (one slot, one node); events
    reach the other process by sharded pub/sub on that node; likes, a vote and a
    question go through both processes."""
    started = time.monotonic()
    cluster = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "yes")
    # the bus on a free port of its own (its default, port + 10000, may be out of range)
    ports = [procs.start(*cluster, "--cluster-port", str(_free_port())) for _ in range(3)]
    created = subprocess.run(
        ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert created.returncode == 0, created.stdout + created.stderr

    def cluster_ok() -> bool:
        return all(b"cluster_state:ok" in redis.Redis(port=p).execute_command("CLUSTER", "INFO") for p in ports)

    await wait_until(cluster_ok, timeout=15, interval=0.1)
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    env = {"REDIS_URL": url, "VIEWER_TTL_S": "2", "LIKE_BURST": "1000"}
    a, b = fresh_server(**env), fresh_server(**env)
    slug = create_show(a.url)
    on_a, on_b = Clients(a), Clients(b)
    try:
        console = await on_a.console(slug)
        overlay = await on_a.overlay(slug)
        phone = await on_b.audience(slug)
        assert (await console.request({"type": "round.start", "topic": "集群", "duration_s": 300}))["type"] == "ack"
        await phone.wait_type("round")
        assert (await phone.request({"type": "vote", "side": "a"}))["type"] == "ack"
        qid = (await phone.request({"type": "ask", "text": "分片了吗"}))["question"]
        await console.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == qid)
        assert (await console.request({"type": "question.approve", "question": qid}))["type"] == "ack"
        await phone.wait_for(lambda f: f["type"] == "question" and f["question"]["id"] == qid)
        await phone.send({"type": "like", "side": "b", "count": 30})
        tally = await overlay.wait_for(lambda f: f["type"] == "tally" and f["likes"]["b"] == 30 and f["viewers"] == 1)
        assert tally["votes"] == {"a": 1, "b": 0}

        # every key of the show is in the slot of {slug}, on the one node that serves it
        node = {p: redis.Redis(port=p) for p in ports}
        held = {p: list(node[p].scan_iter(match=f"lt:{{{slug}}}:*")) for p in ports}
        (owner,) = [p for p in ports if held[p]]  # one node holds the whole show
        # both processes listen to the show's channel on that node (sharded pub/sub)
        channel = f"lt:{{{slug}}}:ev"
        assert node[owner].execute_command("PUBSUB", "SHARDNUMSUB", channel) == [channel.encode(), 2]
        keys = [k for p in ports for k in held[p]]
        assert len(keys) > 5
        slot = node[ports[0]].execute_command("CLUSTER", "KEYSLOT", f"{{{slug}}}")
        assert {node[ports[0]].execute_command("CLUSTER", "KEYSLOT", k) for k in keys} == {slot}
        fresh = await on_b.console(slug)
        assert [q["id"] for q in fresh.frames[0]["show"]["questions"]] == [qid]
    except BaseException:
        print("".join(a.log[-40:]), "".join(b.log[-40:]))
        raise
    finally:
        await on_a.close()
        await on_b.close()
    assert time.monotonic() - started < 60
