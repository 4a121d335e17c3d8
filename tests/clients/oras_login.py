"""oras-py against a registry with Basic authentication at argv[1] (HOST:PORT,
plain HTTP): it logs in, then pushes an artifact and pulls it back. Credentials come from the environment
(ORAS_USER, ORAS_PASSWORD). Prints "ok" at the end; every step asserts.
"""
import os
import sys
import tempfile

import oras.client

host = sys.argv[1]
user, password = os.environ["ORAS_USER"], os.environ["ORAS_PASSWORD"]
config = os.path.join(tempfile.mkdtemp(), "config.json")

# oras-py's login only stores the credentials (it asks the registry only
# through docker-py, which is not installed), and it retries a refused
# request with growing back-off for minutes: refusal of a wrong password is
# checked with docker, podman and plain HTTP instead.
work = tempfile.mkdtemp()
os.chdir(work)
# oras-py speaks Basic authentication through its "basic" backend (its
# default, "token", expects a bearer-token realm).
client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
result = client.login(user, password, hostname=host, tls_verify=False, config_path=config)
assert result.get("Status") == "Login Succeeded", result

payload = os.urandom(4096)
with open("secret.bin", "wb") as f:
    f.write(payload)
resp = client.push(target=f"{host}/oras/private:v1", files=["secret.bin"])
assert resp.status_code == 201, resp.text

out = tempfile.mkdtemp()
files = client.pull(target=f"{host}/oras/private:v1", outdir=out)
assert len(files) == 1, files
with open(files[0], "rb") as f:
    assert f.read() == payload
print("ok")
