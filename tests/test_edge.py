"""The edge against a hostile network (issue 11): slow and piled-up connections,
sign-in guessing, sessions that can be ended, draft shows, and origins checked
against the server's own address rather than the `Host` a client sends."""

from pathlib import Path

from conftest import Server


def test_the_made_host_token_is_printed_only_when_first_made(fresh_server):
    """A host token the server makes itself is printed once, when it is made; later
    starts say where it is kept and never print it (service logs keep every start)."""
    first = fresh_server(HOST_TOKEN="")
    token = (Path(first.data_dir) / "host_token").read_text().strip()
    assert token and token in "".join(first.log)
    first.stop()
    again = Server(data_dir=first.data_dir, HOST_TOKEN="").start()
    try:
        log = "".join(again.log)
        assert "host_token" in log and "not shown" in log
        assert token not in log
    finally:
        again.stop()
        if again.proc and again.proc.stdout:
            again.proc.stdout.close()
