#!/usr/bin/env bash
# Builds the Debian package and exercises it the way an operator would:
# install with dpkg, verify the systemd units, run the installed collector
# and report server the way their units do (no systemd runs as PID 1 in CI,
# so the unit's command line runs as its user, with its limits), post an
# event and read it back, remove (the data stays), purge (refused while
# events are not in the store, then done, saying what it deletes).
#
#   sudo bash deploy/test-package.sh
#
# Needs root (dpkg, a system user); without it it prints `SKIPPED package:`
# (also into $HELIOS_SKIP_LOG, .ci/test's summary) and exits 0. Needs
# cargo-deb 3.8.0 (installed here if missing) and the apt packages systemd
# (systemd-analyze), curl, python3, adduser, init-system-helpers and
# util-linux (setpriv), installed here if missing. It refuses to run where
# a helios package it did not install is present: it purges the package,
# and with it /var/lib/helios. It installs the package at most three times;
# what it installed it purges at the end (the helios user too, if it made
# it). LimitNOFILE is applied up to this machine's hard limit (said so when
# lower).
#
# It uses the config's addresses (127.0.0.1:7070 and :7071): they must be
# free. Environment: CARGO_DEB_VERSION (default 3.8.0).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=${CARGO_DEB_VERSION:-3.8.0}
PACKAGE=helios
DATA_DIR=/var/lib/helios
CONF_DIR=/etc/helios
COLLECTOR_ADDR=127.0.0.1:7070
REPORT_ADDR=127.0.0.1:7071
# Left by this script while its package is installed, so a later run on
# the same machine may purge its leftovers (and only its own).
OWN_MARKER=/var/tmp/helios-test-package.installed
# How long a server may take to answer, and the store to show an event.
WAIT_SECONDS=30

step() { echo "== $*"; }
fail() {
    echo "FAILED package: $*" >&2
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    skip="SKIPPED package: deploy/test-package.sh needs root (dpkg -i, a system user); run it with sudo"
    echo "$skip" >&2
    # .ci/test's summary of skipped tests, when it runs this.
    if [ -n "${HELIOS_SKIP_LOG:-}" ]; then echo "$skip" >>"$HELIOS_SKIP_LOG"; fi
    exit 0
fi

pids=()
lock_pid=""
cleanup() {
    local pid
    for pid in "${pids[@]}" $lock_pid; do
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# Waits until `curl URL` succeeds.
wait_for() {
    local url=$1 i
    for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
        curl -sf -o /dev/null "$url" && return 0
        sleep 0.1
    done
    fail "nothing answers $url after ${WAIT_SECONDS}s"
}

port_free() {
    ! (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null
}

# The value of KEY= in an installed unit.
unit_value() {
    sed -n "s/^$2=//p" "$UNIT_DIR/$1.service" | tail -n 1
}

# Starts the installed unit's ExecStart as its User, with its LimitNOFILE,
# UMask, NoNewPrivileges, no capabilities and / as working directory (what
# systemd would do before its sandboxing, which needs systemd itself).
# Its stderr goes to LOG_DIR/UNIT.log (a file: no colour codes expected).
start_unit() {
    local unit=$1 user exec nofile umask_value
    user=$(unit_value "$unit" User)
    exec=$(unit_value "$unit" ExecStart)
    nofile=$(unit_value "$unit" LimitNOFILE)
    umask_value=$(unit_value "$unit" UMask)
    [ -n "$user" ] && [ -n "$exec" ] && [ -n "$nofile" ] || fail "$unit: no User/ExecStart/LimitNOFILE"
    echo "   $unit: as $user, nofile $nofile, umask $umask_value: $exec"
    # shellcheck disable=SC2086 # ExecStart is a plain word list here.
    if ! (ulimit -n "$nofile") 2>/dev/null; then
        # systemd (PID 1, privileged) sets it; a container may cap even
        # root's hard limit. Run with what is allowed and say so.
        echo "   note: LimitNOFILE=$nofile is above this machine's hard limit; running with $(ulimit -Hn)"
        nofile=$(ulimit -Hn)
    fi
    (
        cd /
        ulimit -n "$nofile"
        umask "$umask_value"
        exec setpriv --reuid "$user" --regid "$user" --init-groups \
            --no-new-privs --inh-caps=-all --bounding-set=-all -- $exec
    ) >"$LOG_DIR/$unit.log" 2>&1 &
    pids+=($!)
    last_pid=$!
}

# SIGTERM, and the exit status must be 0 (a clean drain).
stop_pid() {
    local pid=$1 what=$2 status=0
    kill -TERM "$pid"
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || fail "$what exited $status on SIGTERM (log: $LOG_DIR)"
}

post_event() {
    local body=$1 answer
    answer=$(curl -sf "http://$COLLECTOR_ADDR/v1/events" -d "$body") || fail "POST $body refused"
    [ "$answer" = '{"accepted":1,"rejected":[]}' ] || fail "POST $body answered $answer"
}

# Waits until the installed report server returns COUNT events of TYPE.
wait_for_events() {
    local type=$1 count=$2 i answer=""
    for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
        answer=$(curl -sf "http://$REPORT_ADDR/api/events?types=$type&from=0") || answer=""
        if [ "$(grep -o "\"type\":\"$type\"" <<<"$answer" | wc -l)" -eq "$count" ]; then
            return 0
        fi
        sleep 0.1
    done
    fail "the report server did not return $count $type events: $answer"
}

install_package() {
    dpkg -i "$DEB" >"$LOG_DIR/dpkg-install.log" 2>&1 || {
        cat "$LOG_DIR/dpkg-install.log" >&2
        fail "dpkg -i"
    }
    touch "$OWN_MARKER"
}

step "tools"
command -v dpkg >/dev/null || fail "dpkg missing: this script is for Debian and derivatives"
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
command -v adduser >/dev/null || missing+=(adduser)
command -v deb-systemd-helper >/dev/null || missing+=(init-system-helpers)
command -v setpriv >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    echo "   apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    echo "   cargo install cargo-deb --version $CARGO_DEB_VERSION --locked"
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi
cargo deb --version

step "no helios package of someone else's here"
if dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -qv 'not-installed'; then
    [ -e "$OWN_MARKER" ] ||
        fail "a $PACKAGE package is installed and this script did not install it; it would purge it with $DATA_DIR"
    echo "   purging this script's leftover from an earlier run"
    HELIOS_PURGE_FORCE=yes dpkg --purge "$PACKAGE" >/dev/null
fi
rm -f "$OWN_MARKER"
port_free "$COLLECTOR_ADDR" || fail "$COLLECTOR_ADDR is in use"
port_free "$REPORT_ADDR" || fail "$REPORT_ADDR is in use"
user_existed=false
getent passwd helios >/dev/null && user_existed=true
LOG_DIR=$(mktemp -d /tmp/helios-test-package.XXXXXX)
chmod 755 "$LOG_DIR"

step "build: cargo deb -p $PACKAGE --locked --strip (release build)"
build_start=$SECONDS
# --strip: the release profile keeps line tables (benchmarks, backtraces);
# the package ships binaries without them (300 MB less to compress).
cargo deb -p "$PACKAGE" --locked --strip
echo "   built in $((SECONDS - build_start)) s"
DEB=$(ls -t "${CARGO_TARGET_DIR:-target}"/debian/"${PACKAGE}"_*.deb | head -n 1)
dpkg-deb --info "$DEB" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/   \1:/p'

step "install: dpkg -i $DEB"
install_package
for bin in helios-collector helios-report helios-journal helios; do
    [ -x "/usr/bin/$bin" ] || fail "/usr/bin/$bin not installed"
done
UNIT_DIR=$(dirname "$(dpkg -L "$PACKAGE" | grep '/helios-collector\.service$')")
[ -f "$UNIT_DIR/helios-report.service" ] || fail "helios-report.service not installed"
echo "   units in $UNIT_DIR"
getent passwd helios >/dev/null || fail "no helios user"
[ "$(stat -c '%U:%G %a' "$DATA_DIR")" = "helios:helios 750" ] ||
    fail "$DATA_DIR is $(stat -c '%U:%G %a' "$DATA_DIR")"
for conf in helios.toml report.toml; do
    grep -qx "$CONF_DIR/$conf" /var/lib/dpkg/info/"$PACKAGE".conffiles || fail "$conf is not a conffile"
    [ "$(stat -c '%U:%G %a' "$CONF_DIR/$conf")" = "root:helios 640" ] ||
        fail "$CONF_DIR/$conf is $(stat -c '%U:%G %a' "$CONF_DIR/$conf")"
done

step "every collector flag has a key in $CONF_DIR/helios.toml"
# The config file documents every setting; a new flag without a key there
# fails here. (--config, --help and --version are not settings.)
for flag in $(helios-collector --help | grep -oE '^ +--[a-z0-9-]+' | sed 's/^ *--//'); do
    case "$flag" in config | help | version) continue ;; esac
    grep -qE "^#? ?${flag//-/_} = " "$CONF_DIR/helios.toml" || fail "helios.toml has no ${flag//-/_}"
done
for flag in $(helios-report --help | grep -oE '^ +--[a-z0-9-]+' | sed 's/^ *--//'); do
    case "$flag" in config | help | version) continue ;; esac
    key=${flag//-/_}
    [ "$key" = allowed_host ] && key=allowed_hosts
    grep -qE "^#? ?$key = " "$CONF_DIR/report.toml" || fail "report.toml has no $key"
done

step "systemd-analyze verify"
systemd-analyze verify "$UNIT_DIR/helios-collector.service" "$UNIT_DIR/helios-report.service"
for directive in StateDirectory=helios LimitNOFILE=262144 NoNewPrivileges=yes ProtectSystem=strict \
    ProtectHome=yes PrivateTmp=yes Restart=on-failure \
    'SystemCallFilter=@system-service io_uring_setup io_uring_enter io_uring_register'; do
    grep -qx "$directive" "$UNIT_DIR/helios-collector.service" || fail "collector unit lacks $directive"
done

step "start the installed collector and report server as their units do"
start_unit helios-collector
collector_pid=$last_pid
wait_for "http://$COLLECTOR_ADDR/healthz"
start_unit helios-report
report_pid=$last_pid
wait_for "http://$REPORT_ADDR/api/status"
grep -m1 'io driver' "$LOG_DIR/helios-collector.log" | sed 's/^/   /' || true

step "post an event; the report server returns it"
post_event '{"type":"package.test","n":1}'
wait_for_events package.test 1
[ "$(stat -c %U "$DATA_DIR/events.db")" = helios ] || fail "events.db is not the helios user's"
if grep -q $'\e\[' "$LOG_DIR/helios-collector.log" "$LOG_DIR/helios-report.log"; then
    fail "colour codes in logs written to a file"
fi

step "stage events not yet in the store (store locked, event acked, collector killed)"
lock_fifo="$LOG_DIR/lock.fifo"
mkfifo "$lock_fifo"
# Holds SQLite's write lock (as a second writer would) until the fifo
# closes, so the flusher cannot store what the collector acks meanwhile.
python3 -c '
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
' "$DATA_DIR/events.db" <"$lock_fifo" >"$LOG_DIR/lock.out" &
lock_pid=$!
exec 4>"$lock_fifo"
for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    grep -q locked "$LOG_DIR/lock.out" && break
    sleep 0.1
done
grep -q locked "$LOG_DIR/lock.out" || fail "could not lock the store"
post_event '{"type":"package.pending","n":2}'
kill -KILL "$collector_pid"
# Reaped with stderr closed: bash reports a job's SIGKILL on stderr.
exec 9>&2 2>/dev/null
wait "$collector_pid" || true
true
exec 2>&9 9>&-
exec 4>&-
wait "$lock_pid"
lock_pid=""
stop_pid "$report_pid" helios-report

step "remove: dpkg -r keeps the data and names what is pending"
dpkg -r "$PACKAGE" 2>&1 | tee "$LOG_DIR/dpkg-remove.log" | sed 's/^/   /'
[ ! -e /usr/bin/helios-collector ] || fail "binaries left after remove"
[ -f "$DATA_DIR/events.db" ] && [ -d "$DATA_DIR/journal" ] || fail "remove deleted data"
[ -f "$CONF_DIR/helios.toml" ] || fail "remove deleted a conffile"
grep -q 'not in the store yet' "$LOG_DIR/dpkg-remove.log" || fail "remove did not name the pending records"

step "purge refuses while the journals hold events not in the store"
if dpkg --purge "$PACKAGE" >"$LOG_DIR/dpkg-purge-refused.log" 2>&1; then
    cat "$LOG_DIR/dpkg-purge-refused.log" >&2
    fail "purge went ahead with events pending"
fi
sed 's/^/   /' "$LOG_DIR/dpkg-purge-refused.log"
grep -q 'refusing to purge' "$LOG_DIR/dpkg-purge-refused.log" || fail "no refusal message"
[ -f "$DATA_DIR/events.db" ] && [ -d "$DATA_DIR/journal" ] || fail "a refused purge deleted data"
# dpkg deletes the conffiles before it runs postrm purge, so a refused
# purge leaves the package in "config-files" without them; a reinstall
# brings them back (checked below by starting from them).
echo "   dpkg state: $(dpkg-query -W -f='${Status}' "$PACKAGE"); conffiles: $(ls "$CONF_DIR" 2>/dev/null | tr '\n' ' ')"

step "reinstall; the collector delivers the pending event"
install_package
start_unit helios-collector
collector_pid=$last_pid
wait_for "http://$COLLECTOR_ADDR/healthz"
start_unit helios-report
report_pid=$last_pid
wait_for_events package.pending 1
wait_for_events package.test 1
stop_pid "$collector_pid" helios-collector
stop_pid "$report_pid" helios-report

step "remove and purge with everything delivered: purge deletes the data"
dpkg -r "$PACKAGE" >/dev/null 2>&1
dpkg --purge "$PACKAGE" 2>&1 | tee "$LOG_DIR/dpkg-purge.log" | sed 's/^/   /'
grep -q "purge deletes $DATA_DIR" "$LOG_DIR/dpkg-purge.log" || fail "purge did not say what it deletes"
[ ! -e "$DATA_DIR" ] || fail "$DATA_DIR left after purge"
[ ! -e "$CONF_DIR/helios.toml" ] || fail "conffiles left after purge"
rm -f "$OWN_MARKER"

step "dead letters also stop a purge, unless forced"
install_package
install -d -o helios -g helios "$DATA_DIR/dead-letter"
echo '{"version":1,"reason":"refused by the store","event":{"_id":"000000000000000000000001","type":"t"}}' \
    >"$DATA_DIR/dead-letter/dead-letter.ndjson"
dpkg -r "$PACKAGE" >/dev/null 2>&1
if dpkg --purge "$PACKAGE" >"$LOG_DIR/dpkg-purge-dead.log" 2>&1; then
    fail "purge went ahead with dead letters"
fi
grep -q 'dead letters: 1 ' "$LOG_DIR/dpkg-purge-dead.log" || fail "refusal did not name the dead letters"
HELIOS_PURGE_FORCE=yes dpkg --purge "$PACKAGE" 2>&1 | tee "$LOG_DIR/dpkg-purge-forced.log" | sed 's/^/   /'
grep -q 'purge forced' "$LOG_DIR/dpkg-purge-forced.log" || fail "forced purge did not say what it discards"
[ ! -e "$DATA_DIR" ] || fail "$DATA_DIR left after a forced purge"
rm -f "$OWN_MARKER"
if ! $user_existed; then
    deluser --system --quiet helios
    if getent group helios >/dev/null; then delgroup --system --quiet --only-if-empty helios; fi
fi
rm -rf "$LOG_DIR"

step "package OK"
