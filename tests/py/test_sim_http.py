"""The simulator's HTTP layer serves every accepted request promptly,
however many keep-alive connections are open and however many answers are
held: more requests are held at once here than any fixed pool of handler
threads would allow, and fresh connections are answered meanwhile."""
import http.client
import json
import threading
import urllib.parse

from conftest import SEED

HELD = 24  # more than any handler pool the simulator ever had (16)


def connection(sim):
    u = urllib.parse.urlparse(sim.endpoint)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def get(conn, sim, path):
    conn.request("GET", path, headers={"Authorization": f"Bearer {sim.token}"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def test_held_answers_never_keep_other_requests_waiting(sim):
    ids = [v["id"] for v in json.loads(SEED.read_text())["volumes"]][:HELD]
    paths = [f"/v1/volumes/{i}" for i in ids]
    for p in paths:
        sim.hold("GET", p)
    conns = [connection(sim) for _ in paths]
    # Warm every connection first, so each is an open keep-alive connection.
    for c in conns:
        assert get(c, sim, "/v1/locations")[0] == 200
    answers = {}
    threads = [threading.Thread(target=lambda c=c, p=p: answers.__setitem__(p, get(c, sim, p))) for c, p in zip(conns, paths)]
    for t in threads:
        t.start()
    # Every one of them is being processed at once: all are held together.
    for p in paths:
        sim.wait_held("GET", p)
    # Meanwhile new connections are answered.
    for _ in range(4):
        fresh = connection(sim)
        status, body = get(fresh, sim, "/v1/servers")
        assert status == 200 and body["servers"]
        fresh.close()
    assert answers == {}, "nothing held was answered before its release"
    for p in paths:
        sim.release("GET", p)
    for t in threads:
        t.join(timeout=60)
    assert sorted(answers) == sorted(paths) and all(status == 200 for status, _ in answers.values())
    for c in conns:
        c.close()
