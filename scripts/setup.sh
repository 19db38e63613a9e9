#!/usr/bin/env bash
# Installs what building, testing, demoing and benchmarking rprof-bpf needs on Debian 12:
# the Debian packages below (only the missing ones) and the rustfmt and clippy components.
# Idempotent, and silent when everything is already there. Run it as root.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Package -> why it is needed.
#   clang llvm libelf-dev zlib1g-dev pkg-config make gcc   build libbpf-sys and the BPF objects
#   libc6-dbg                                              debug info for libc (its .gnu_debuglink),
#                                                          so libc frames get names and lines
#   linux-perf                                             `perf`, the peer in scripts/bench.sh
#   bpftrace                                               the peer of scripts/bench.sh's uprobes
#                                                          section (alloc and mutex)
#   golang-go                                              `go tool pprof`, and the Go test workloads
#   graphviz                                               pprof's graph and flame graph views
#   bpftool                                                inspecting BPF programs and BTF
#   util-linux procps time                                 setpriv, runuser, unshare, ps/pgrep,
#                                                          GNU time
#   libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0       the allocators that replace glibc's
#                                                          malloc (LD_PRELOAD) in the alloc tests
#   g++                                                    the C++ test workloads
#   tmux                                                   a real terminal for the progress test
#   gcc-aarch64-linux-gnu libc6-dev-arm64-cross            arm64 builds for the unwinder's tests
#   postgresql nodejs openjdk-17-jdk-headless              real programs for the stack tests
#                                                          (pgbench under PostgreSQL; V8's and
#                                                          the JVM's JIT code and perf maps)
PACKAGES=(
    clang llvm libelf-dev zlib1g-dev pkg-config make gcc g++ tmux
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    postgresql nodejs openjdk-17-jdk-headless
    libc6-dbg
    linux-perf
    bpftrace
    golang-go
    graphviz
    bpftool
    util-linux procps time
    libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    # "install ok installed" is the only state in which the package's files are really there.
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    [[ $EUID -eq 0 ]] || die "missing Debian packages: ${missing[*]}; run as root (sudo $0) to install them"
    echo "setup.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Rust toolchain comes from rustup (Debian's rustc is older than our rust-version).
find_cargo

# rustfmt and clippy: add them only when missing, so an offline machine that has them passes.
components=()
cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
if ((${#components[@]} > 0)); then
    command -v rustup >/dev/null 2>&1 ||
        die "cargo has no ${components[*]}, and rustup is not there to add them"
    echo "setup.sh: adding Rust components ${components[*]}" >&2
    rustup component add "${components[@]}" >&2 ||
        die "rustup component add ${components[*]} failed"
fi

# Not installable from here, but worth a word: CO-RE needs the kernel's BTF.
if [[ ! -e /sys/kernel/btf/vmlinux ]]; then
    echo "setup.sh: warning: /sys/kernel/btf/vmlinux is missing; this kernel has no BTF," \
        "so rprof-bpf's CO-RE BPF programs cannot load" >&2
fi
