#!/usr/bin/env bash
# Checks (and where a package registry can supply it, installs) what the build
# and the tests need on a fresh machine: a Rust toolchain >= 1.89 with rustfmt
# and clippy, a C/C++ compiler (usearch and LMDB are compiled from source;
# the C header and C tests use cc and c++), binutils (nm, readelf) and Go
# (the Go binding's tests), Node.js with npm (the Node binding's tests) and
# Python 3 with venv (the REST contract fuzz), and with --for-tests Chromium
# (the web page's test).
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v nm >/dev/null 2>&1 || need_apt+=(binutils)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The REST contract fuzz installs schemathesis into a virtual environment.
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
# The web page's test runs it in headless Chromium (only the tests need it:
# scripts/test.sh passes --for-tests).
if [ "${1:-}" = "--for-tests" ]; then
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
        || need_apt+=(chromium)
fi
# The disk-full tests mount a small tmpfs (as root).
command -v mount >/dev/null 2>&1 || need_apt+=(mount)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "setup: no Rust toolchain found; install Rust >= 1.89 with rustup (https://rustup.rs)" >&2
        exit 1
    fi
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            rustup component add "$component"
        else
            echo "setup: cargo $component is missing; install it with 'rustup component add $component'" >&2
            exit 1
        fi
    fi
done
