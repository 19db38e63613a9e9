# Shared by the scripts in this directory; source it, do not run it.
# Leaves the caller in the repository root, with cargo on PATH when it can be found.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

need_root() {
    [[ $EUID -eq 0 ]] || die "needs root (BPF, perf events and apt): run it as root, e.g. sudo $0"
}

# rustup puts cargo in ~/.cargo/bin, which sudo's secure_path drops. Look in the usual places,
# including the home of the user who called sudo. That user's toolchains are used as they are
# (RUSTUP_HOME); cargo's own caches stay in root's CARGO_HOME, so no root-owned files land in
# the user's ~/.cargo.
find_cargo() {
    command -v cargo >/dev/null 2>&1 && return 0
    local home dir
    for dir in "${CARGO_HOME:-${HOME:-/root}/.cargo}/bin" /root/.cargo/bin; do
        if [[ -x "$dir/cargo" ]]; then
            PATH="$dir:$PATH"
            export PATH
            return 0
        fi
    done
    if [[ -n "${SUDO_USER:-}" ]]; then
        home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
        if [[ -n "$home" && -x "$home/.cargo/bin/cargo" ]]; then
            export RUSTUP_HOME="${RUSTUP_HOME:-$home/.rustup}"
            PATH="$home/.cargo/bin:$PATH"
            export PATH
            return 0
        fi
    fi
    die "cargo not found: install Rust with rustup (https://rustup.rs), then run this again"
}
