"""oras-py round trip against a registry at argv[1] (HOST:PORT, plain HTTP);
with argv[2], the reads (referrers, pull) go there (another replica).

Pushes artifact A (a file with its own config media type), then artifact B
with artifactType and subject=A (what `oras attach` does), then lists A's
referrers, filters them, and pulls A back. Every step asserts; the last line
printed is a JSON summary for the Rust test to check.
"""
import hashlib
import json
import os
import sys
import tempfile

import oras.client
import oras.defaults
import oras.oci

host = sys.argv[1]
reader = sys.argv[2] if len(sys.argv) > 2 else host
repo = "oras/artifact"
client = oras.client.OrasClient(hostname=host, insecure=True)
work = tempfile.mkdtemp()
os.chdir(work)  # push() takes paths relative to the working directory
payload = os.urandom(64 * 1024)
with open("a.bin", "wb") as f:
    f.write(payload)
with open("sbom.json", "w") as f:
    json.dump({"sbom": "for A"}, f)

resp = client.push(
    target=f"{host}/{repo}:v1",
    files=["a.bin:application/vnd.berth.test.file"],
    manifest_config="no-such-file:application/vnd.berth.test.a.config+json",
)
assert resp.status_code == 201, resp.text
a_digest = resp.headers["Docker-Content-Digest"]
raw = client.do_request(
    f"http://{host}/v2/{repo}/manifests/{a_digest}", "GET",
    headers={"Accept": oras.defaults.default_manifest_media_type},
).content
assert "sha256:" + hashlib.sha256(raw).hexdigest() == a_digest

container = client.get_container(f"{host}/{repo}")
layer = oras.oci.NewLayer("sbom.json", media_type="application/vnd.berth.test.sbom+json")
layer["annotations"] = {"org.opencontainers.image.title": "sbom.json"}
assert client.upload_blob("sbom.json", container, layer).status_code in (200, 201)
empty = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": oras.defaults.blank_config_hash, "size": 2}
with open("empty.json", "w") as f:
    f.write("{}")
assert client.upload_blob("empty.json", container, empty).status_code in (200, 201)
manifest_b = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.berth.test.sbom",
    "config": empty,
    "layers": [layer],
    "subject": {"mediaType": oras.defaults.default_manifest_media_type, "digest": a_digest, "size": len(raw)},
    "annotations": {"org.example.note": "sbom of A"},
}
resp = client.upload_manifest(manifest_b, client.get_container(f"{host}/{repo}:sbom"))
assert resp.status_code == 201, resp.text
assert resp.headers.get("OCI-Subject") == a_digest, resp.headers
b_digest = resp.headers["Docker-Content-Digest"]

url = f"http://{reader}/v2/{repo}/referrers/{a_digest}"
r = client.do_request(url, "GET", headers={"Accept": "application/vnd.oci.image.index.v1+json"})
assert r.status_code == 200, r.text
referrers = r.json()["manifests"]
r = client.do_request(url + "?artifactType=application/vnd.other", "GET")
assert r.headers.get("OCI-Filters-Applied") == "artifactType"
assert r.json()["manifests"] == []

files = client.pull(target=f"{reader}/{repo}:v1", outdir=os.path.join(work, "pulled"))
pulled = [f for f in files if f.endswith("a.bin")]
assert len(pulled) == 1, files
with open(pulled[0], "rb") as f:
    assert f.read() == payload, "pulled artifact differs"

print(json.dumps({"a": a_digest, "b": b_digest, "referrers": referrers}))
