# Sourced by the scripts: make .venv with the project installed (idempotent, fast when done).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
EXTRAS="${GATEWAY_EXTRAS-test}"   # empty: the package alone (scripts/run)
SPEC="."
[ -n "$EXTRAS" ] && SPEC=".[$EXTRAS]"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
STAMP=".venv/.installed-$EXTRAS"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
    echo "==> installing gateway ($SPEC) into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e "$SPEC" >&2
    touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"

# Debian packages some tests and benchmarks drive for real (root only; skipped otherwise).
apt_need() {
    local missing=()
    for pair in "$@"; do
        local cmd="${pair%%:*}" pkg="${pair##*:}"
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> apt-get install ${missing[*]}" >&2
        apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    else
        echo "==> missing Debian packages (install them as root): ${missing[*]}" >&2
    fi
}
