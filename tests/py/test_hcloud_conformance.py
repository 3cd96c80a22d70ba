"""The official hcloud Python client (pinned in requirements.txt) drives the
simulator unchanged through the whole volume life cycle and its error cases."""
import pytest
from hcloud import Client
from hcloud.locations import Location
from hcloud.servers import Server
from hcloud._exceptions import APIException


@pytest.fixture
def client(sim):
    return Client(token=sim.token, api_endpoint=sim.endpoint, poll_interval=0.02)


def wait(*actions):
    for a in actions:
        a.wait_until_finished()


def test_volume_life_cycle(client, sim):
    builder = client.servers.get_by_name("builder-01")
    litellm = client.servers.get_by_name("litellm-01")
    assert builder.location.name == "nbg1"

    # Create in a location, then attach.
    r = client.volumes.create(size=10, name="conf-loc", location=Location(name="nbg1"),
                              labels={"suite": "conformance"}, format="xfs")
    wait(r.action, *r.next_actions)
    vol = client.volumes.get_by_id(r.volume.id)
    assert (vol.status, vol.format, vol.server) == ("available", "xfs", None)
    wait(vol.attach(builder, automount=False))
    assert client.volumes.get_by_id(vol.id).server.id == builder.id

    # Create with a server: create and attach in one request.
    r2 = client.volumes.create(size=20, name="conf-srv", server=litellm, automount=True, format="ext4")
    assert [a.command for a in r2.next_actions] == ["attach_volume"]
    wait(r2.action, *r2.next_actions)
    assert client.volumes.get_by_name("conf-srv").server.id == litellm.id
    assert r2.volume.id in [v.id for v in client.servers.get_by_id(litellm.id).volumes]

    # Detach, resize up, refuse resize down.
    wait(vol.detach())
    wait(vol.resize(30))
    assert client.volumes.get_by_id(vol.id).size == 30
    with pytest.raises(APIException) as down:
        vol.resize(20)
    assert down.value.code == "invalid_input" and "downgrade" in down.value.message

    # Protect: delete refused; unprotect.
    wait(vol.change_protection(delete=True))
    with pytest.raises(APIException) as protected:
        vol.delete()
    assert protected.value.code == "protected"
    wait(vol.change_protection(delete=False))

    # Labels, and a label selector across more than one page.
    client.volumes.update(vol, labels={"suite": "conformance", "stage": "updated"})
    assert client.volumes.get_by_id(vol.id).labels["stage"] == "updated"
    legacy = client.volumes.get_all(label_selector="generation=v2")
    assert len(legacy) == 40
    page = client.volumes.get_list(label_selector="generation", page=2, per_page=25)
    assert len(page.volumes) == 15 and page.meta.pagination.page == 2
    everything = client.volumes.get_all()
    assert len(everything) == 42

    # Delete, then get is not found.
    assert vol.delete() is True
    with pytest.raises(APIException) as gone:
        client.volumes.get_by_id(vol.id)
    assert gone.value.code == "not_found"

    # Action lookups through both action endpoints.
    acts = client.volumes.get_by_id(r2.volume.id).get_actions()
    assert {a.command for a in acts} == {"create_volume", "attach_volume"}
    assert client.actions.get_by_id(acts[0].id).status == "success"


def test_error_cases(client):
    minio = client.volumes.get_by_name("vol-minio-01")
    mail = client.servers.get_by_name("mail-mx-01")  # hel1

    with pytest.raises(APIException) as dup:
        client.volumes.create(size=10, name="vol-minio-01", location=Location(name="nbg1"))
    assert (dup.value.code, dup.value.message) == ("uniqueness_error", "name is already used")

    with pytest.raises(APIException) as attached_delete:
        minio.delete()
    assert attached_delete.value.code == "service_error"
    assert "still attached" in attached_delete.value.message

    wait(minio.detach())
    with pytest.raises(APIException) as cross:
        minio.attach(mail)
    assert cross.value.code == "invalid_input"
    assert "same location" in cross.value.message

    with pytest.raises(APIException) as tiny:
        client.volumes.create(size=5, name="tiny", location=Location(name="nbg1"))
    assert tiny.value.code == "invalid_input"

    with pytest.raises(APIException) as missing:
        client.servers.get_by_id(1)
    assert missing.value.code == "not_found"


def test_bad_token_is_unauthorized(sim):
    bad = Client(token="wrong", api_endpoint=sim.endpoint)
    with pytest.raises(APIException) as err:
        bad.volumes.get_all()
    assert err.value.code == "unauthorized"
    assert all(r["status"] == 401 for r in sim.requests())


def test_a_server_can_be_described_with_everything_it_references(client, sim):
    server = client.servers.get_by_name("builder-01")
    # The official client follows private_net to the network (GET /networks/1).
    network = server.private_net[0].network
    assert network.name == "kbv3-private" and network.ip_range == "10.0.0.0/16"
    assert server.id in [s.id for s in network.servers]
    assert [n.id for n in client.networks.get_all()] == [network.id]
    assert client.networks.get_by_name("kbv3-private").id == network.id
    assert any(r["route"] == "/networks/{id}" and r["status"] == 200 for r in sim.requests())
    # Datacenters (one per location; the client marks them deprecated, the
    # document still serves them) and server types.
    with pytest.warns(DeprecationWarning):
        dcs = client.datacenters
    datacenters = dcs.get_all()
    here = [d for d in datacenters if d.location.name == server.location.name]
    assert len(here) == 1 and dcs.get_by_name(here[0].name).id == here[0].id
    assert dcs.get_by_id(here[0].id).location.id == server.location.id
    types = client.server_types.get_all()
    assert [t.name for t in types] == [server.server_type.name]
    assert {p["location"] for p in client.server_types.get_by_id(server.server_type.id).prices} == \
        {d.location.name for d in datacenters}
    # What does not exist is 404, as the API answers it.
    for missing in (lambda: client.networks.get_by_id(2), lambda: client.server_types.get_by_id(99),
                    lambda: dcs.get_by_id(999)):
        with pytest.raises(APIException) as err:
            missing()
        assert err.value.code == "not_found"
    # Read-only: a write is refused as the API refuses an unknown method.
    assert all(r["method"] == "GET" for r in sim.requests())
