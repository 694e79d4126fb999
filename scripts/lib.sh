# Shared by hub-deploy and hub-down: argument parsing of the compose options, finding the
# binaries, and the demo fallback. Sourced, not run.

hub_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
    printf '%s: %s\n' "$(basename "$0")" "$*" >&2
    exit 2
}

# abs PATH: PATH made absolute against the current folder (- stays -).
abs() {
    case "$1" in
        /* | -) printf '%s' "$1" ;;
        *) printf '%s/%s' "$PWD" "$1" ;;
    esac
}

# hub_bins: sets $bin to a folder holding the tools. Order: $HUB_BIN_DIR; the PATH when it has
# them; else a release build of this checkout (built on first use).
hub_bins() {
    local tools=(hub-levels hub-start hub-wait-healthy)
    if [ -n "${HUB_BIN_DIR:-}" ]; then
        bin="$HUB_BIN_DIR"
    elif command -v hub-levels >/dev/null && command -v hub-start >/dev/null && command -v hub-wait-healthy >/dev/null; then
        bin="$(dirname "$(command -v hub-start)")"
    elif [ -f "$hub_root/Cargo.toml" ] && command -v cargo >/dev/null; then
        bin="$hub_root/target/release"
        if [ ! -x "$bin/hub-wait-healthy" ] || [ -n "$(find "$hub_root/lib" "$hub_root/tools" -newer "$bin/hub-wait-healthy" -name '*.rs' -print -quit 2>/dev/null)" ]; then
            echo "ℹ building the hub tools (cargo build --release), once…" >&2
            (cd "$hub_root" && cargo build --release --quiet --workspace --bins) || die "cargo build failed"
        fi
    else
        die "the hub tools are not on PATH and there is no checkout to build them from; install them (cargo install --path tools/hub-start, …) or set HUB_BIN_DIR"
    fi
    local tool
    for tool in "${tools[@]}"; do
        [ -x "$bin/$tool" ] || die "$bin/$tool is missing; set HUB_BIN_DIR to the folder with the hub tools"
    done
}

# hub_compose_files: with no -f, no COMPOSE_FILE, no --project-directory and no compose file here,
# use the bundled demo (run from the repository root, or the installed share/hub; its state stays
# where the script was run from). Sets $demo=1 when it did.
hub_compose_files() {
    demo=0
    if [ "${#files[@]}" -gt 0 ] || [ -n "${COMPOSE_FILE:-}" ] || [ -n "$project_dir" ]; then
        return
    fi
    local name
    for name in compose.yaml compose.yml docker-compose.yaml docker-compose.yml; do
        [ -f "$name" ] && return
    done
    demo=1
    files=("$hub_root/examples/demo/compose.yaml")
    cd "$hub_root" || die "cannot enter $hub_root"
    echo "ℹ no compose file here: using the bundled demo stack (examples/demo/compose.yaml)" >&2
}

# hub_levels_args: the hub-levels arguments for the chosen files, project directory, env files,
# profiles, class label, default class and Swarm stack (--swarm) (and --resolve when $resolve=1: compose resolves the
# files, hub plans from its output).
hub_levels_args() {
    levels_args=()
    local f p
    for f in "${files[@]}"; do levels_args+=(-f "$f"); done
    [ -n "$project_dir" ] && levels_args+=(--project-directory "$project_dir")
    for f in ${env_files[@]+"${env_files[@]}"}; do levels_args+=(--env-file "$f"); done
    for p in "${profiles[@]}"; do levels_args+=(--profile "$p"); done
    [ -n "$class_label" ] && levels_args+=(--class-label "$class_label")
    [ -n "${default_class:-}" ] && levels_args+=(--default-class "$default_class")
    [ -n "${swarm:-}" ] && levels_args+=(--swarm "$swarm")
    if [ "${resolve:-0}" = 1 ]; then
        levels_args+=(--resolve)
        [ -n "${compose_cmd:-}" ] && levels_args+=(--compose-cmd "$compose_cmd")
    fi
    return 0
}

# hub_version: print "SCRIPT VERSION", the version of the tools the script runs.
hub_version() {
    hub_bins
    local v
    v="$("$bin/hub-start" --version)" || die "$bin/hub-start --version failed"
    printf '%s %s\n' "$(basename "$0")" "${v##* }"
}
