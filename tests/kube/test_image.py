"""deploy/Dockerfile, as far as this machine can check it without a Docker engine: hadolint, the
runtime libraries the binary needs against what debian:bookworm-slim has, and the Dockerfile's
agreement with the chart and the injector (uid, binary path, packages, copied sources)."""

import re
import subprocess
import tomllib

from harness import ROOT, TOOLS, asg_bin

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
# debian:bookworm-slim: libc6 (glibc 2.36, libc, libm, the loader) and libgcc-s1.
RUNTIME_LIBS = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2"}
BOOKWORM_GLIBC = (2, 36)


def test_hadolint_is_clean():
    out = subprocess.run([TOOLS / "venv" / "bin" / "hadolint", DOCKERFILE], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_binary_needs_only_what_the_runtime_image_has():
    out = subprocess.run(["ldd", asg_bin()], capture_output=True, text=True, check=True).stdout
    libs = {line.split()[0].rsplit("/", 1)[-1] for line in out.splitlines() if line.strip()}
    assert libs <= RUNTIME_LIBS, libs - RUNTIME_LIBS
    symbols = subprocess.run(["objdump", "-T", asg_bin()], capture_output=True, text=True, check=True).stdout
    versions = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", symbols)}
    assert max(versions) <= BOOKWORM_GLIBC, max(versions)


def test_dockerfile_agrees_with_the_workspace_chart_and_injector():
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2, "a build stage and a runtime stage"
    build, runtime = stages
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", build, re.M))
    flat = {p for line in copied for p in line.split()}
    # A member inside a copied folder (proxy/fuzz inside proxy) is copied with it.
    covered = lambda p: any(p == c or p.startswith(c.rstrip("/") + "/") for c in flat)  # noqa: E731
    needed = set(members) | {"Cargo.toml", "Cargo.lock", "policies"}
    assert all(covered(p) for p in needed), (needed, flat)
    # The shipped binary is the workspace's `dist` profile (release with whole-program optimisation).
    assert "cargo build --profile dist --locked -p asg" in build
    profiles = tomllib.loads((ROOT / "Cargo.toml").read_text())["profile"]
    assert profiles["dist"]["inherits"] == "release" and profiles["dist"]["lto"] == "fat", profiles
    assert re.search(r"apt-get install .*ca-certificates.*iptables", runtime)
    assert "COPY policies /etc/asg/policies" in runtime
    assert re.search(r"^USER 1337:1337$", runtime, re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/asg"]' in runtime
    # The injector's containers run /usr/local/bin/asg as uid 1337 by default.
    template = (ROOT / "proxy" / "src" / "kube" / "template.rs").read_text()
    assert 'const BIN: &str = "/usr/local/bin/asg";' in template
    values = (ROOT / "helm" / "asg" / "values.yaml").read_text()
    assert re.search(r"^  uid: 1337$", values, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"target", ".git", ".ci-tools"} <= set(ignored)
