#!/usr/bin/env bash
# Store benchmark, tern side by side with Dovecot on the same messages.
# Usage: bench/store/run.sh [MESSAGES] [DELIVERIES]   (defaults 100000 and 2000)
# Prints one line per measurement: name, tern, Dovecot, and how many times faster tern is.
# Dovecot (Debian's dovecot-imapd) reads the same Maildir through its imap binary, run
# preauthenticated with a private config; its times include starting that process, except
# in the "SELECT alone" row (the first SELECT's reply time inside the session, against
# tern's open inside its process). "warm open, whole process" times both as a process.
# The "never FETCHed" rows are warm opens before anything was FETCHed (the index as the
# first open left it, on both sides); the other warm rows come after a FETCH of all.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100000}
deliveries=${2:-2000}
build=$("$root/scripts/build" release)
"$root/scripts/deps" dovecot-imapd >/dev/null
work=$(mktemp -d /tmp/tern-bench-XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
cc -O2 -I "$root/libcommon" "$root/bench/store/bench_store.c" "$build/libcommon/libcommon.a" \
	-pthread -o "$work/bench_store"
b="$work/bench_store"

mkdir -p "$work/tern/cur" "$work/tern/new" "$work/tern/tmp"
"$b" gen "$work/tern" "$n"
cp -a "$work/tern" "$work/dovecot"
sync # both first opens start with the files written out, not racing their writeback

secs() { awk '{print $2}'; }
t_first=$("$b" open "$work/tern" | secs)
mkdir -p "$work/d1" "$work/d32"
t_d1=$("$b" deliver "$work/d1" "$deliveries" 1 | secs)
t_d32=$("$b" deliver "$work/d32" "$deliveries" 32 | secs)

# Dovecot: mail user nobody when we are root (it refuses root).
uid=$(id -u); gid=$(id -g)
if [ "$uid" -eq 0 ]; then uid=65534; gid=65534; chown -R 65534:65534 "$work/dovecot"; fi
mkdir -p "$work/dv/run" "$work/dv/state" "$work/dv/home"
chown -R "$uid:$gid" "$work/dv"
cat >"$work/dv/dovecot.conf" <<CONF
base_dir = $work/dv/run
state_dir = $work/dv/state
log_path = $work/dv/log
mail_location = maildir:$work/dovecot
mail_uid = $uid
mail_gid = $gid
first_valid_uid = 0
first_valid_gid = 0
ssl = no
CONF
# One Dovecot session: sends each command after the previous one completed (so a long
# SEARCH is not cut short by end of input) and prints the session's seconds (wall, CPU)
# and the seconds from sending the command tagged "a" to its tagged reply.
imap() {
	python3 - "$1" "$work/dv/dovecot.conf" "$work/dv/home" <<'PY'
import subprocess, sys, time
cmds = sys.argv[1].encode().decode("unicode_escape").split("\r\n")
env = {"USER": "tester", "HOME": sys.argv[3], "PATH": "/usr/bin:/bin"}
start = time.monotonic()
p = subprocess.Popen(["/usr/lib/dovecot/imap", "-c", sys.argv[2]], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, env=env)
a_secs = 0.0
for cmd in filter(None, cmds):
    tag = cmd.split()[0].encode()
    sent = time.monotonic()
    p.stdin.write(cmd.encode() + b"\r\n")
    p.stdin.flush()
    while True:
        line = p.stdout.readline()
        if not line:
            sys.exit("dovecot ended early")
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                sys.exit(line.decode(errors="replace"))
            if tag == b"a":
                a_secs = time.monotonic() - sent
            break
p.stdin.close()
p.wait()
import resource
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.4f %.4f %.4f" % (time.monotonic() - start, ru.ru_utime + ru.ru_stime, a_secs))
PY
}
d_first=$(imap 'a SELECT INBOX\r\nz LOGOUT\r\n' | awk '{print $1}')
# The machine is shared: five rounds, tern and Dovecot alternating, medians reported
# (wall seconds, and CPU seconds of the process doing the work).
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# tern's open as a whole process, timed from outside like Dovecot's session.
process() {
	python3 -c 'import subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print("%.4f" % (time.monotonic() - t))' "$@"
}
# Warm opens; $1 prefixes the keys. Each round starts with the page cache written out:
# a FETCH or search just before leaves tens of MB of cache files (both sides) whose
# writeback would otherwise land in whichever wall time comes next.
warm_rounds() {
	for _ in 1 2 3 4 5; do
		sync
		"$b" open "$work/tern" | awk -v p="$1" '{print p "t_warm", $2, $3}'
		imap 'a SELECT INBOX\r\nz LOGOUT\r\n' |
			awk -v p="$1" '{print p "d_warm", $1, $2; print p "d_select", $3}'
		process "$b" open "$work/tern" | awk -v p="$1" '{print p "t_proc", $1}'
	done
}
# Before any FETCH: the index as the first open left it (on both sides). First let the
# first opens' writes reach the disk and their directory times settle (each side rescans
# once while a directory changed less than 2 s ago), and run that rescan uncounted.
sync
sleep 2.5
"$b" open "$work/tern" >/dev/null
imap 'a SELECT INBOX\r\nz LOGOUT\r\n' >/dev/null
warm_rounds n_ >"$work/rounds"
# The first FETCH of all envelopes: where both now parse the messages.
t_ffetch=$("$b" fetch "$work/tern" | secs)
d_ffetch=$(imap 'a SELECT INBOX\r\nb FETCH 1:* (FLAGS ENVELOPE)\r\nz LOGOUT\r\n' | awk '{print $1}')
rounds() {
	warm_rounds ""
	for _ in 1 2 3 4 5; do
		"$b" fetch "$work/tern" | awk '{print "t_fetch", $2, $3}'
		imap 'a SELECT INBOX\r\nb FETCH 1:* (FLAGS ENVELOPE)\r\nz LOGOUT\r\n' |
			awk '{print "d_fetch", $1, $2}'
		"$b" search "$work/tern" needle | awk '{print "t_search", $2, $3}'
		imap 'a SELECT INBOX\r\nb SEARCH HEADER SUBJECT needle\r\nz LOGOUT\r\n' |
			awk '{print "d_search", $1, $2}'
	done
}
rounds >>"$work/rounds"
pick() { awk -v k="$1" -v c="$2" '$1 == k {print $c}' "$work/rounds" | median; }

# Dovecot deliveries: dovecot-lda, one process per message as an MTA would run it.
mkdir -p "$work/dvd" "$work/dvd-msg/cur" "$work/dvd-msg/new" "$work/dvd-msg/tmp"
"$b" gen "$work/dvd-msg" 1
msg=$(ls "$work/dvd-msg/new"/*)
sed "s|maildir:$work/dovecot|maildir:$work/dvd|" "$work/dv/dovecot.conf" >"$work/dv/lda.conf"
chown -R "$uid:$gid" "$work/dvd" "$work/dvd-msg" "$work/dv/lda.conf"
as=()
[ "$(id -u)" -eq 0 ] && as=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
lda_writer() {
	for _ in $(seq 1 "$1"); do
		"${as[@]}" env USER=tester HOME="$work/dv/home" /usr/lib/dovecot/dovecot-lda \
			-c "$work/dv/lda.conf" -f bench@example.org <"$msg" || return 1
	done
}
start=$(date +%s.%N); lda_writer "$deliveries"; d_d1=$(echo "$(date +%s.%N) - $start" | bc -l)
start=$(date +%s.%N)
pids=()
for _ in $(seq 1 32); do lda_writer $((deliveries / 32)) & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
d_d32=$(echo "$(date +%s.%N) - $start" | bc -l)

row() { printf '%-29s %10.4f %10.4f %8.2fx\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"; }
printf '%-29s %10s %10s %9s\n' "($n messages, seconds)" tern dovecot "tern is"
row "first open (wall)" "$t_first" "$d_first"
row "first fetch after it (wall)" "$t_ffetch" "$d_ffetch"
row "first open + fetch (wall)" "$(echo "$t_first + $t_ffetch" | bc -l)" \
	"$(echo "$d_first + $d_ffetch" | bc -l)"
row "warm, never FETCHed: SELECT" "$(pick n_t_warm 2)" "$(pick n_d_select 2)"
row "warm, never FETCHed: process" "$(pick n_t_proc 2)" "$(pick n_d_warm 2)"
row "warm open, SELECT alone" "$(pick t_warm 2)" "$(pick d_select 2)"
row "warm open, whole process" "$(pick t_proc 2)" "$(pick d_warm 2)"
for m in warm fetch search; do
	label=$(case $m in warm) echo "warm open" ;; fetch) echo "flags+envelope all" ;;
		search) echo "header search" ;; esac)
	row "$label (wall)" "$(pick t_$m 2)" "$(pick d_$m 2)"
	row "$label (cpu)" "$(pick t_$m 3)" "$(pick d_$m 3)"
done
per() { echo "$1 / $2" | bc -l; }
rate() {
	printf '%-29s %10.0f %10.0f %8.2fx  (deliveries/s)\n' "$1" "$(per "$2" "$3")" \
		"$(per "$4" "$5")" "$(echo "($2 / $3) / ($4 / $5)" | bc -l)"
}
rate "deliveries, 1 writer" "$deliveries" "$t_d1" "$deliveries" "$d_d1"
rate "deliveries, 32 writers" "$((deliveries / 32 * 32))" "$t_d32" "$((deliveries / 32 * 32))" "$d_d32"
