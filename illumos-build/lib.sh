# Sourced by the scripts of illumos-build/: the messages and the failure
# path they share, named after the script that sources this.
prog="$(basename "${BASH_SOURCE[1]:-$0}")"

die() {
    echo "$prog: error: $*" >&2
    exit 1
}
note() { echo "$prog: $*"; }
